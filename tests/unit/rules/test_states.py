"""State inputs (edge.rules.states): contact inputs and lift boxes raise and clear once, after the minimum
time, with named states and the lift's floor; bad readings change nothing; restarts do not repeat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from edge.config import EstateConfig
from edge.config.devices import StateRule
from edge.records import AlarmState, Quality, Reading, Severity
from edge.rules import OpenAlarm, RuleEngine, TransitionKind

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

DOOR = {"id": "DI-1", "name": "3栋1单元", "category": "other", "states": {
    "di1": {"alarm": "fire.door_open", "active": [1], "min_duration_s": 60, "names": {0: "关闭", 1: "开启"},
            "label": "3栋1单元 防火门"},
    "di2": {"alarm": "water.ingress", "active": [1], "severity": "critical", "label": "B1 配电房 水浸"},
}}
LIFT = {"id": "LIFT-1", "name": "3栋1号电梯", "category": "other", "states": {
    "fault_code": {"alarm": "elevator.fault", "inactive": [0], "context": ["floor"],
                   "names": {3: "门锁回路故障", 5: "冲顶"}},
    "trapped": {"alarm": "elevator.trapped", "active": [1], "severity": "critical", "context": ["floor"]},
}}


def engine() -> RuleEngine:
    return RuleEngine.from_config(EstateConfig.model_validate({
        "estate": {"id": "e1", "name": "E", "gateway_id": "g1"},
        "platform": {"url": "https://platform.example", "client_id": "c"},
        "buses": [{"kind": "synthetic", "id": "b"}],
        "devices": [{"bus": "b", "location": {"building": "3栋"}, **d} for d in (DOOR, LIFT)],
    }))


def r(device: str, point: str, value: float, second: float, quality: Quality = Quality.GOOD) -> Reading:
    return Reading(device, point, value, "", T0 + timedelta(seconds=second), quality)


def test_fire_door_alarm_waits_for_the_minimum_open_time_and_clears_once() -> None:
    e = engine()
    assert e.on_readings([r("DI-1", "di1", 1, 0), r("DI-1", "di1", 1, 30)]) == []
    raised = e.on_readings([r("DI-1", "di1", 1, 61)])
    assert [(t.code, t.kind, t.point) for t in raised] == [("fire.door_open", TransitionKind.RAISE, "di1")]
    assert raised[0].message == "3栋1单元 防火门：开启（已持续 61 秒）" and raised[0].data["held_s"] == 61
    assert e.on_readings([r("DI-1", "di1", 1, 90)]) == []  # still open: no second alarm
    cleared = e.on_readings([r("DI-1", "di1", 0, 95)])
    assert [t.kind for t in cleared] == [TransitionKind.CLEAR] and "关闭" in cleared[0].message
    assert e.on_readings([r("DI-1", "di1", 0, 100)]) == []


def test_a_door_opened_briefly_raises_nothing_and_restarts_the_wait() -> None:
    e = engine()
    assert e.on_readings([r("DI-1", "di1", 1, 0), r("DI-1", "di1", 0, 40), r("DI-1", "di1", 1, 50),
                          r("DI-1", "di1", 1, 100)]) == []
    assert len(e.on_readings([r("DI-1", "di1", 1, 111)])) == 1


def test_water_ingress_raises_at_once_with_its_severity() -> None:
    (t,) = engine().on_readings([r("DI-1", "di2", 1, 0)])
    assert t.code == "water.ingress" and t.severity == "critical"


def test_lift_fault_carries_code_name_and_the_floor_of_the_same_poll() -> None:
    e = engine()
    (t,) = e.on_readings([r("LIFT-1", "fault_code", 3, 0), r("LIFT-1", "floor", 12, 0)])
    assert t.code == "elevator.fault" and t.message == "3栋1号电梯：门锁回路故障（楼层 12）"
    assert t.data["value"] == 3 and t.data["floor"] == 12
    assert e.on_readings([r("LIFT-1", "fault_code", 5, 10), r("LIFT-1", "floor", 12, 10)]) == []  # one alarm
    (cleared,) = e.on_readings([r("LIFT-1", "fault_code", 0, 20), r("LIFT-1", "floor", 11, 20)])
    assert cleared.kind is TransitionKind.CLEAR and cleared.data["floor"] == 11
    (trapped,) = e.on_readings([r("LIFT-1", "trapped", 1, 30)])
    assert trapped.code == "elevator.trapped" and "楼层 11" in trapped.message


def test_a_bad_reading_neither_raises_nor_clears() -> None:
    e = engine()
    assert [t.code for t in e.on_readings([r("DI-1", "di2", 1, 0, Quality.BAD)])] == ["device.sensor_fault"]
    e2 = engine()
    assert len(e2.on_readings([r("DI-1", "di2", 1, 0)])) == 1
    assert e2.on_readings([r("DI-1", "di2", 0, 5, Quality.BAD)])[0].code == "device.sensor_fault"
    assert e2.is_open("water.ingress", "DI-1", "di2")


def test_restored_alarm_is_not_raised_again_and_still_clears() -> None:
    e = engine()
    e.restore([OpenAlarm("A1", "fire.door_open", "DI-1", Severity.MAJOR, AlarmState.RAISED, T0, "",
                         {"subject": "DI-1", "point": "di1"})])
    assert e.is_open("fire.door_open", "DI-1", "di1")
    assert e.on_readings([r("DI-1", "di1", 1, 0), r("DI-1", "di1", 1, 100)]) == []
    assert [t.kind for t in e.on_readings([r("DI-1", "di1", 0, 110)])] == [TransitionKind.CLEAR]


@pytest.mark.parametrize("rule", [{"alarm": "fire.door_open"}, {"alarm": "fire.door_open", "active": [1], "inactive": [0]}])
def test_a_rule_needs_exactly_one_of_active_and_inactive(rule: dict) -> None:
    with pytest.raises(ValidationError, match="either active"):
        StateRule.model_validate(rule)
