"""The indicators and alarms config sections as an installer writes them in YAML."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from edge.config import load_config
from edge.errors import ConfigError

BASE = """\
estate: {id: EST-1, name: 测试, gateway_id: GW-1}
platform: {url: "https://127.0.0.1:9", client_id: gw}
buses: [{kind: synthetic, id: bus}]
devices:
  - {id: EM-1, name: m, bus: bus, category: electricity, sub_item: lifts, location: {building: "1"}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "estate.yaml"
    path.write_text(BASE + text, encoding="utf-8")
    return path


def test_defaults_and_yaml_clock_times(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """\
indicators:
  energy:
    night_start: 23:30
    night_end: "05:00"
    monthly_quota: {EM-1: 3000, "sub_item:lifts": 5000}
alarms:
  escalate_after_min: [10, 30, 90]
  notifiers:
    - {kind: wecom, id: duty, key: k, mentioned_mobiles: ["13800001111"], msgtype: text}
    - {kind: dingtalk, id: boss, access_token: t, steps: [escalated], min_escalation_level: 2}
"""))
    energy = config.indicators.energy
    assert (energy.night_start, energy.night_end) == (time(23, 30), time(5, 0))  # unquoted 23:30 is base 60
    assert config.indicators.close_delay_s == 120 and config.indicators.backfill_hours == 72
    assert [n.kind for n in config.alarms.notifiers] == ["wecom", "dingtalk"]
    assert config.alarms.escalate_after_min == [10, 30, 90]


def test_unknown_quota_device_and_counter_point_are_named_with_lines(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, """\
indicators:
  counter_points: {EM-9: energy_import}
  energy:
    monthly_quota: {EM-7: 10}
"""))
    text = "\n".join(info.value.problems)
    assert "indicators.counter_points: no device 'EM-9'" in text
    assert "'EM-7' is neither a device id nor 'sub_item:<tag>'" in text
    assert "estate.yaml:" in text


def test_bad_notifier_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, """\
alarms:
  notifiers:
    - {kind: wecom, id: duty}
"""))
    assert any("alarms.notifiers[0]" in p and "key" in p for p in info.value.problems), info.value.problems
