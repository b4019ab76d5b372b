"""Stored messages read in the viewer's language; points by their names; technical detail apart."""

from __future__ import annotations

import json

from edge.config.devices import DeviceConfig
from edge.messages import say
from edge.panel.alarm_queries import AlarmRow
from edge.panel.wording import Wording
from edge.store.codec import MESSAGE_KEY, split_message

LABELS = {"B1-HP-01": "1栋 消火栓压力 B1-HP-01"}


def _alarm(code: str, **params: object) -> AlarmRow:
    said = say(code, **params)  # rendered now in the configured (default: Chinese) language, as the store keeps it
    return AlarmRow("A1", code, "B1-HP-01", "major", "raised", True, said["message"], {"track_id": 7}, None,
                    1, 1, None, None, None, None, "", None, None, said["message_code"], said["params"])


def test_a_stored_chinese_message_reads_in_english_and_back() -> None:
    alarm = _alarm("device.offline", device="B1-HP-01", failures=3)
    assert "离线" in alarm.message
    assert Wording("en", LABELS).message(alarm) == "1栋 消火栓压力 B1-HP-01 offline: no answer to 3 polls in a row"
    assert Wording("zh", LABELS).message(alarm) == "1栋 消火栓压力 B1-HP-01 离线：连续 3 次轮询无应答"


def test_a_row_without_a_code_keeps_its_stored_text() -> None:
    old = AlarmRow("A2", "fire.hydrant_pressure_low", None, "major", "raised", True, "1栋消火栓压力低", {}, None,
                   1, 1, None, None, None, None, "", None, None)
    assert Wording("en", {}).message(old) == "1栋消火栓压力低"
    # A code whose params were not kept (a row from before message codes): the stored text, not "{zone}".
    lane = AlarmRow("A3", "fire.lane_blocked", "cam-1", "critical", "raised", True, "消防通道被占用", {}, None,
                    1, 1, None, None, None, None, "", None, None, "fire.lane_blocked", {})
    assert Wording("en", {}).message(lane) == "消防通道被占用"


def test_state_alarm_context_is_worded_in_each_language() -> None:
    alarm = _alarm("state.alarm", what="2栋1号电梯", state="门锁回路故障", context="floor=12,direction=0,fault_code=5")
    assert Wording("zh", {}).message(alarm) == "2栋1号电梯：门锁回路故障（楼层 12，停止，故障代码 5）"
    assert Wording("en", {}).message(alarm) == "2栋1号电梯: 门锁回路故障 (floor 12, stopped, fault code 5)"


def test_points_read_as_names_and_the_state_rule_label_wins() -> None:
    device = DeviceConfig.model_validate({
        "id": "B1-DI-01", "name": "1栋开关量模块", "bus": "b", "category": "other", "location": {"building": "1栋"},
        "states": {"di1": {"alarm": "fire.door_open", "active": [0], "label": "1栋1单元 1层防火门"}}})
    zh, en = Wording("zh", {}), Wording("en", {})
    assert zh.point("pressure") == "压力" and en.point("pressure") == "pressure"
    assert zh.point("voltage_ab") == "AB 线电压" and en.point("voltage_ab") == "line voltage AB"
    assert zh.point("di1", device) == "1栋1单元 1层防火门" and zh.point("di2", device) == "开关量输入 2"
    assert zh.point("no_such_point") == "no_such_point"  # the browser test's catalogue check reports such a key
    assert zh.term("class", "car") == "小汽车" and en.term("class", "motorcycle") == "e-bike"
    # State points name their values: the installer's names, else the catalogue's lift box codes.
    assert zh.value_names("di1", device) == {} and en.value_names("direction") == {
        "0": "stopped", "1": "going up", "2": "going down"}
    named = device.model_copy(update={"states": {"di1": device.states["di1"].model_copy(
        update={"names": {0: "开启", 1: "关闭"}})}})
    assert zh.value_names("di1", named) == {"0": "开启", "1": "关闭"} and zh.value_names("pressure") == {}


def test_details_leave_out_the_message_key() -> None:
    stored = json.dumps({"track_id": 7, MESSAGE_KEY: {"code": "fire.ebike_entry", "params": {"zone": "2栋"}}})
    data, code, params = split_message("fire.ebike_entry", stored)
    assert code == "fire.ebike_entry" and params == {"zone": "2栋"}
    assert Wording.details({**data, MESSAGE_KEY: {}}) == {"track_id": 7}
    assert Wording.details(None) == {}


def test_the_catalogue_names_the_lift_box_codes_as_the_template_does() -> None:
    from edge.messages import catalogue
    from edge.rules.states import CONTEXT_NAMES

    table = catalogue("zh-CN").terms["context"]
    assert {f"{point}.{code}": name for point, names in CONTEXT_NAMES.items() for code, name in names.items()} == {
        k: v for k, v in table.items() if not k.startswith("_")}


def test_every_indicator_code_has_a_name_in_both_panel_languages() -> None:
    from edge.indicators.catalog import CODES
    from edge.panel.i18n import catalog

    for lang in ("zh", "en"):
        assert [c for c in CODES if f"indicator.{c}" not in catalog(lang)] == [], lang


def test_the_overview_shows_the_demo_clock_figure_until_the_hour_closes() -> None:
    from edge.panel.overview import _estate_wide
    from edge.store.queries import StoredIndicator

    def row(rid: str, dims: dict[str, str], value: float) -> StoredIndicator:
        return StoredIndicator(rid, f"k|{dims}", 1, "data.completeness", "hour", 100, 200, value, "ratio", 10, 0.1,
                               json.dumps({"dimensions": dims}))

    demo = row("2", {"demo": "running_hour"}, 0.9)
    shown = _estate_wide("data.completeness", "hour", [demo, row("3", {"device": "X"}, 0.5)])
    assert shown is not None and shown.demo and shown.value == 0.9
    real = _estate_wide("data.completeness", "hour", [demo, row("1", {}, 0.95)])
    assert real is not None and not real.demo and real.value == 0.95
