"""The shared rule engine: thresholds with hysteresis and duration, sensor faults, availability, restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge.config import EstateConfig
from edge.records import AlarmState, DeviceStatus, Event, Quality, Reading, Severity
from edge.rules import OpenAlarm, RuleEngine, TransitionKind, specs_from_config

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def estate(devices: list[dict], **thresholds: object) -> EstateConfig:
    return EstateConfig.model_validate({
        "estate": {"id": "e1", "name": "E", "gateway_id": "g1"},
        "platform": {"url": "https://platform.example", "client_id": "c"},
        "thresholds": thresholds,
        "buses": [{"kind": "synthetic", "id": "b"}],
        "devices": [{"name": d["id"], "bus": "b", "location": {"building": d.pop("building", "1")}, **d} for d in devices],
    })


def pressure(device: str, value: float, second: float, quality: Quality = Quality.GOOD) -> Reading:
    return Reading(device, "pressure", value, "MPa", T0 + timedelta(seconds=second), quality)


def run(engine: RuleEngine, readings: list[Reading]) -> list:
    return [t for r in readings for t in engine.evaluate(r, r.ts)]


@pytest.fixture
def engine() -> RuleEngine:
    return RuleEngine.from_config(estate([{"id": "h1", "category": "fire_pressure"}]))


def test_hydrant_low_pressure_raises_after_30_s_and_clears_with_hysteresis(engine: RuleEngine) -> None:
    # Residential default: 0.07 MPa, 30 s, clears above 0.08 MPa.
    seq = [pressure("h1", v, s) for s, v in [(0, 0.30), (10, 0.05), (20, 0.05), (35, 0.05), (40, 0.06), (50, 0.05)]]
    out = run(engine, seq)
    assert [(t.code, t.kind, t.ts) for t in out] == [
        ("fire.hydrant_pressure_low", TransitionKind.RAISE, T0 + timedelta(seconds=40))
    ]
    raised = out[0]
    assert raised.device_id == "h1" and raised.point == "pressure" and raised.data["limit"] == 0.07
    assert raised.data["subject"] == "h1"
    # 0.075 is above the limit but inside the hysteresis band: still open, no new raise either.
    assert run(engine, [pressure("h1", 0.075, 60), pressure("h1", 0.05, 70)]) == []
    cleared = run(engine, [pressure("h1", 0.081, 80)])
    assert [(t.code, t.kind) for t in cleared] == [("fire.hydrant_pressure_low", TransitionKind.CLEAR)]
    assert not engine.is_open("fire.hydrant_pressure_low", "h1", "pressure")


def test_a_short_dip_does_not_alarm(engine: RuleEngine) -> None:
    seq = [pressure("h1", v, s) for s, v in [(0, 0.05), (20, 0.05), (25, 0.2), (30, 0.05), (55, 0.05)]]
    assert run(engine, seq) == []  # the good value at 25 s restarted the 30 s timer


def test_no_duplicate_raise_while_open(engine: RuleEngine) -> None:
    seq = [pressure("h1", 0.01, s) for s in range(0, 300, 5)]
    out = run(engine, seq)
    assert len(out) == 1 and out[0].kind is TransitionKind.RAISE


def test_building_class_picks_the_minimum() -> None:
    cfg = estate(
        [{"id": "res", "category": "fire_pressure", "building": "1栋"},
         {"id": "pub", "category": "fire_pressure", "building": "会所"},
         {"id": "own", "category": "fire_pressure", "thresholds": {"pressure": {"low": 0.15, "min_duration_s": 0}}}],
        building_classes={"会所": "public_class1"},
    )
    specs = specs_from_config(cfg).thresholds
    assert specs[("res", "pressure")].low == 0.07
    assert specs[("pub", "pressure")].low == 0.10
    assert specs[("own", "pressure")].low == 0.15 and specs[("own", "pressure")].min_duration_s == 0
    engine = RuleEngine(specs_from_config(cfg))
    at_008 = [pressure(d, 0.08, s) for d in ("res", "pub", "own") for s in (0, 31)]
    raised = {t.device_id for t in run(engine, at_008)}
    assert raised == {"pub", "own"}


def test_out_of_range_is_a_sensor_fault_not_a_pressure_drop(engine: RuleEngine) -> None:
    seq = [pressure("h1", -0.5, s) for s in (0, 10, 40, 80)]
    out = run(engine, seq)
    assert [(t.code, t.kind) for t in out] == [("device.sensor_fault", TransitionKind.RAISE)]
    # Bad quality from the driver counts as a fault too, and does not feed the low-pressure timer.
    assert run(engine, [pressure("h1", 0.01, 90, Quality.BAD)]) == []
    cleared = run(engine, [pressure("h1", 0.3, 100), pressure("h1", 0.3, 110)])
    assert [(t.code, t.kind) for t in cleared] == [("device.sensor_fault", TransitionKind.CLEAR)]


def test_high_threshold_and_generic_codes() -> None:
    cfg = estate([{"id": "tank", "category": "fire_level",
                   "thresholds": {"level": {"low": 2.0, "high": 4.5, "hysteresis": 0.1, "min_duration_s": 10}}},
                  {"id": "m", "category": "electricity",
                   "thresholds": {"active_power": {"high": 50000, "min_duration_s": 0}}}])
    engine = RuleEngine.from_config(cfg)
    level = [Reading("tank", "level", v, "m", T0 + timedelta(seconds=s)) for s, v in [(0, 1.5), (11, 1.5), (20, 2.05),
                                                                                     (30, 2.2), (40, 4.8), (55, 4.8)]]
    out = run(engine, level)
    assert [(t.code, t.kind) for t in out] == [
        ("fire.water_level_low", TransitionKind.RAISE),
        ("fire.water_level_low", TransitionKind.CLEAR),
        ("fire.water_level_high", TransitionKind.RAISE),
    ]
    power = run(engine, [Reading("m", "active_power", 60000, "W", T0)])
    assert [t.code for t in power] == ["electricity.active_power_high"]


def test_offline_and_online_hysteresis(engine: RuleEngine) -> None:
    def status(ok: bool, s: int) -> list:
        return engine.evaluate(DeviceStatus("h1", ok, T0 + timedelta(seconds=s), None if ok else "timeout"), T0)

    assert status(False, 0) == [] and status(False, 10) == []
    raised = status(False, 20)
    assert [(t.code, t.kind) for t in raised] == [("device.offline", TransitionKind.RAISE)]
    assert status(False, 30) == []  # still offline: no duplicate
    assert status(True, 40) == []  # one success is not enough
    assert status(False, 50) == []
    assert status(True, 60) == []
    cleared = status(True, 70)
    assert [(t.code, t.kind) for t in cleared] == [("device.offline", TransitionKind.CLEAR)]


def test_restore_prevents_duplicates_and_still_clears(engine: RuleEngine) -> None:
    from_store = [
        OpenAlarm("A1", "fire.hydrant_pressure_low", "h1", Severity.CRITICAL, AlarmState.ACKNOWLEDGED, T0, "",
                  {"subject": "h1", "point": "pressure"}),
        OpenAlarm("A2", "device.offline", "h1", Severity.WARNING, AlarmState.RAISED, T0, "",
                  {"subject": "h1", "point": None}),
    ]
    engine.restore(from_store)
    assert run(engine, [pressure("h1", 0.01, s) for s in (100, 200)]) == []
    assert engine.evaluate(DeviceStatus("h1", True, T0), T0) == []
    assert [t.kind for t in engine.evaluate(DeviceStatus("h1", True, T0), T0)] == [TransitionKind.CLEAR]
    assert [t.kind for t in run(engine, [pressure("h1", 0.3, 300)])] == [TransitionKind.CLEAR]
    assert engine.open_alarms() == []


def test_overload_event_opens_and_closes_a_bus_alarm(engine: RuleEngine) -> None:
    def overload(active: bool, s: int) -> Event:
        return Event("modbus.overload", T0 + timedelta(seconds=s), data={"bus": "b2-rs485", "active": active})

    out = engine.on_events([overload(True, 0), overload(True, 5)])
    assert [(t.code, t.subject, t.device_id, t.kind) for t in out] == [
        ("modbus.overload", "b2-rs485", None, TransitionKind.RAISE)
    ]
    assert [t.kind for t in engine.on_events([overload(False, 60)])] == [TransitionKind.CLEAR]
    assert engine.on_events([Event("something.else", T0)]) == []


def test_pipeline_protocol_methods(engine: RuleEngine) -> None:
    readings = [pressure("h1", 0.01, s) for s in (0, 31)]
    assert [t.code for t in engine.on_readings(readings)] == ["fire.hydrant_pressure_low"]
    assert engine.on_status(DeviceStatus("h1", False, T0)) == []
    with pytest.raises(TypeError):
        engine.evaluate(object(), T0)  # type: ignore[arg-type]


def test_bad_value_on_a_point_without_rules_is_still_a_sensor_fault(engine: RuleEngine) -> None:
    def volts(value: float, s: int, quality: Quality = Quality.GOOD) -> Reading:
        return Reading("m1", "voltage", value, "V", T0 + timedelta(seconds=s), quality)

    assert engine.on_readings([volts(230.0, 0)]) == []
    raised = engine.on_readings([volts(float("nan"), 1), volts(0.0, 2, Quality.BAD)])
    assert [(t.code, t.subject, t.point, t.kind) for t in raised] == [
        ("device.sensor_fault", "m1", "voltage", TransitionKind.RAISE)]
    cleared = engine.on_readings([volts(230.0, 3), volts(231.0, 4), volts(232.0, 5)])
    assert [(t.code, t.kind) for t in cleared] == [("device.sensor_fault", TransitionKind.CLEAR)]
