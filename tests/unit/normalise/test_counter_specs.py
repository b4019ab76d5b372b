"""Counter rollover and plausible rate come from the profile's register type, scale and rating (issue 10 defect 6).

A uint32 x 0.1 kWh register (Acrel ADL400) wrapping from 0xFFFFFFFF to 100 was booked as a reset
(+10.0 kWh, quality uncertain) instead of a rollover (+10.1 kWh): the modulus 2**32 x 0.1 was
never taken from the profile. ``max_rate_per_s`` was never set either, so a jump no meter could
make was counted as consumption. The class: every counter point of every shipped profile gets its
modulus and rate from the profile, and a device can override both.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drivers.modbus.profile import ProfileLibrary
from drivers.registry import counter_specs
from edge.config import EstateConfig
from edge.normalise.normaliser import Normaliser
from edge.records import Quality, Reading

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def estate(**device: object) -> EstateConfig:
    return EstateConfig.model_validate({
        "estate": {"id": "e1", "name": "E", "gateway_id": "g1"},
        "platform": {"url": "https://platform.example", "client_id": "c"},
        "buses": [{"kind": "modbus_tcp", "id": "b", "host": "127.0.0.1"}],
        "devices": [{"id": "EM-1", "name": "总表", "bus": "b", "category": "electricity",
                     "location": {"building": "1"}, "unit_id": 1, "profile": "acrel_adl400", **device}],
    })


def feed(normaliser: Normaliser, values: list[tuple[float, float]]) -> list[Reading]:
    return [normaliser.normalise_one(Reading("EM-1", "energy_import", v, "kWh", T0 + timedelta(seconds=s)))
            for s, v in values]


def test_uint32_x_0_1_wrap_is_a_rollover_of_10_1_kwh() -> None:
    config = estate()
    normaliser = Normaliser.from_config(config, counters=counter_specs(config))
    top = 0xFFFFFFFF * 0.1
    out = feed(normaliser, [(0, top - 2.0), (60, top), (120, 100 * 0.1)])
    assert out[-1].value == pytest.approx(top + 10.1)
    assert out[-1].quality is Quality.GOOD
    assert [e.code for e in normaliser.drain_events()] == ["meter.counter_rollover"]


def test_an_implausible_jump_is_not_consumption() -> None:
    config = estate()
    normaliser = Normaliser.from_config(config, counters=counter_specs(config))
    out = feed(normaliser, [(0, 1000.0), (60, 1010.0), (120, 5000.0), (180, 5001.0)])
    # 10 kWh a minute is plausible for a 1 MW feeder; +3990 kWh in a minute is a meter swap.
    assert [r.value for r in out] == pytest.approx([1000.0, 1010.0, 1010.0, 1011.0])
    assert out[2].quality is Quality.UNCERTAIN
    assert [e.code for e in normaliser.drain_events()] == ["meter.counter_jump"]


def test_a_device_overrides_the_profile() -> None:
    config = estate(counters={"energy_import": {"max_rate_per_s": 0.05, "rollover": 100000}})
    specs = counter_specs(config)
    assert specs[("EM-1", "energy_import")].rollover == 100000
    normaliser = Normaliser.from_config(config, counters=specs)
    out = feed(normaliser, [(0, 99999.0), (60, 0.02)])  # a 5-digit display rolling over
    assert out[-1].value == pytest.approx(100000.02)
    out = feed(normaliser, [(120, 5.5)])  # +5.48 kWh in 60 s: above 0.05 kWh/s
    assert out[-1].quality is Quality.UNCERTAIN


@pytest.mark.parametrize("profile", sorted(p.id for p in ProfileLibrary([]).load_all()))
def test_every_shipped_counter_has_a_plausible_rate_and_integer_counters_a_modulus(profile: str) -> None:
    loaded = ProfileLibrary([]).get(profile)
    for name, spec in loaded.counter_specs().items():
        point = loaded.points[name]
        assert spec.max_rate_per_s is not None and spec.max_rate_per_s > 0, f"{profile}.{name}: no plausible rate"
        if point.type.value.startswith("uint") and not (point.scale_by or point.offset_from or point.decimals_from):
            assert spec.rollover == pytest.approx(2 ** (16 * point.registers) * abs(point.scale)), name
