"""The pipeline's normaliser: canonical units, validity, monotonic counters, anomaly events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge.config import EstateConfig
from edge.normalise import Normaliser, PointPolicy
from edge.records import Quality, Reading
from edge.units import UnitError, convert, to_canonical

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def r(device: str, point: str, value: float, unit: str, minute: int = 0, quality: Quality = Quality.GOOD) -> Reading:
    return Reading(device, point, value, unit, T0 + timedelta(minutes=minute), quality)


class TestUnits:
    @pytest.mark.parametrize(
        ("value", "unit", "expected", "canonical"),
        [(1500.0, "Wh", 1.5, "kWh"), (2.5, "kW", 2500.0, "W"), (350.0, "kPa", 0.35, "MPa"), (3.0, "bar", 0.3, "MPa"),
         (1000.0, "L", 1.0, "m³"), (2.0, "m3", 2.0, "m³"), (1.0, "L/s", 3.6, "m³/h"), (250.0, "cm", 2.5, "m")],
    )
    def test_to_canonical(self, value: float, unit: str, expected: float, canonical: str) -> None:
        got, got_unit = to_canonical(value, unit)
        assert got == pytest.approx(expected) and got_unit == canonical

    def test_water_head_means_pressure_or_level_by_target(self) -> None:
        assert convert(10.0, "mH2O", "MPa") == pytest.approx(0.0980665)
        assert convert(3.25, "mH₂O", "m") == pytest.approx(3.25)
        assert convert(1250.0, "mmH2O", "m") == pytest.approx(1.25)
        assert convert(9.80665, "kPa", "m") == pytest.approx(1.0)  # hydrostatic head of water

    def test_incompatible_and_unknown_units(self) -> None:
        with pytest.raises(UnitError, match="cannot convert"):
            convert(1.0, "V", "A")
        with pytest.raises(UnitError, match="unknown unit"):
            convert(1.0, "furlong", "m")


def config(**devices: dict) -> EstateConfig:
    base = {
        "estate": {"id": "e1", "name": "E", "gateway_id": "g1"},
        "platform": {"url": "https://platform.example", "client_id": "c"},
        "buses": [{"kind": "synthetic", "id": "b"}],
        "devices": [
            {"id": k, "name": k, "bus": "b", "location": {"building": "1"}, **v} for k, v in devices.items()
        ],
    }
    return EstateConfig.model_validate(base)


def test_units_are_canonicalised_and_counters_made_monotonic() -> None:
    n = Normaliser()
    out = n.normalise([r("m1", "energy", 1_500_000.0, "Wh"), r("m1", "power", 2.0, "kW")])
    assert (out[0].value, out[0].unit) == (1500.0, "kWh")
    assert (out[1].value, out[1].unit) == (2000.0, "W")
    # A meter swap: the total stays, the reading is uncertain, an event is queued.
    swapped = n.normalise([r("m1", "energy", 300_000.0, "Wh", minute=1)])[0]
    assert swapped.value == 1500.0 and swapped.quality is Quality.UNCERTAIN
    events = n.drain_events()
    assert [e.code for e in events] == ["meter.replaced"] and events[0].data["point"] == "energy"
    assert n.drain_events() == []
    assert n.normalise([r("m1", "energy", 302_000.0, "Wh", minute=2)])[0].value == pytest.approx(1502.0)


def test_rollover_event_and_state_round_trip() -> None:
    n = Normaliser()
    n.normalise([r("w", "volume", 99999.8, "m³"), r("w", "volume", 0.3, "m³", 1)])
    assert [e.code for e in n.drain_events()] == ["meter.counter_rollover"]
    states = n.counter_states()
    fresh = Normaliser()
    fresh.restore_counters(states)
    assert fresh.normalise([r("w", "volume", 1.3, "m³", 2)])[0].value == pytest.approx(100001.3)


def test_valid_range_from_device_thresholds_and_category_defaults() -> None:
    cfg = config(
        p1={"category": "fire_pressure", "thresholds": {"pressure": {"valid_min": 0.0, "valid_max": 1.6}}},
        p2={"category": "fire_pressure"},
        lvl={"category": "fire_level"},
    )
    n = Normaliser.from_config(cfg)
    out = n.normalise([
        r("p1", "pressure", 1.7, "MPa"), r("p1", "pressure", 0.3, "MPa"),
        r("p2", "pressure", -0.2, "MPa"), r("p2", "pressure", 300.0, "kPa"),
        r("lvl", "level", -3.0, "m"),
    ])
    assert [o.quality for o in out] == [Quality.BAD, Quality.GOOD, Quality.BAD, Quality.GOOD, Quality.BAD]
    assert out[3].value == pytest.approx(0.3)


def test_reconfigure_takes_new_valid_ranges_and_keeps_counter_totals() -> None:
    n = Normaliser.from_config(config(p1={"category": "fire_pressure"}, m={"category": "electricity"}))
    n.normalise([r("m", "energy", 100.0, "kWh"), r("m", "energy", 150.0, "kWh", 1)])
    assert n.normalise([r("p1", "pressure", 1.7, "MPa", 2)])[0].quality is Quality.GOOD  # within the category default
    n.reconfigure(config(p1={"category": "fire_pressure", "thresholds": {"pressure": {"valid_max": 1.6}}},
                         m={"category": "electricity"}))
    assert n.normalise([r("p1", "pressure", 1.7, "MPa", 3)])[0].quality is Quality.BAD
    assert n.normalise([r("p1", "pressure", 1.2, "MPa", 3)])[0].quality is Quality.GOOD
    # The meter's tracker survived the reload: a lower raw value is a replacement (the total holds at
    # 150 kWh), not a fresh meter starting at 5.
    assert n.normalise([r("m", "energy", 5.0, "kWh", 4)])[0].value == pytest.approx(150.0)


def test_quality_never_improves_and_unknown_units_are_bad() -> None:
    n = Normaliser()
    kept = n.normalise([r("d", "x", 1.0, "V", quality=Quality.UNCERTAIN)])[0]
    assert kept.quality is Quality.UNCERTAIN
    unknown = n.normalise([r("d", "y", 1.0, "furlong")])[0]
    assert unknown.quality is Quality.BAD and unknown.unit == "furlong"


def test_policy_can_declare_a_non_counter_volume() -> None:
    n = Normaliser({("w", "prepaid_left"): PointPolicy(counter=False)})
    out = n.normalise([r("w", "prepaid_left", 10.0, "m³"), r("w", "prepaid_left", 9.0, "m³", 1)])
    assert [o.value for o in out] == [10.0, 9.0]


def test_plain_readings_pass_through_untouched_but_nan_is_bad() -> None:
    n = Normaliser()
    plain = r("m", "power", 1200.0, "W")
    assert n.normalise([plain])[0] is plain
    assert n.normalise([plain])[0] is plain  # the cached fast path
    nan = n.normalise([r("m", "power", float("nan"), "W")])[0]
    assert nan.quality is Quality.BAD
