"""Gas and heat meters (CJ/T 188) count in the energy indicators beside electricity and water
(004 8.4.8 d)): energy.gas_m3 and energy.heat_kwh per meter, per sub-item and in total."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.indicators.conftest import T0, make_rig, reading  # noqa: F401 - make_rig is a fixture

MIN = timedelta(minutes=1)
METERS = [
    {"id": "GM-1", "name": "3栋燃气表", "category": "gas", "sub_item": "households", "poll_interval_s": 60},
    {"id": "GM-2", "name": "食堂燃气表", "category": "gas", "poll_interval_s": 60},
    {"id": "HM-1", "name": "换热站热表", "category": "heat", "poll_interval_s": 60},
]


async def test_gas_and_heat_consumption_per_meter_sub_item_and_total(make_rig) -> None:  # noqa: F811
    rig = await make_rig(METERS)
    for i in range(61):
        ts = T0 + i * MIN
        rig.clock.set(ts)
        await rig.feed([
            reading("GM-1", "volume", 100 + 0.01 * i, "m³", ts),
            reading("GM-1", "volume_settlement", 90.0, "m³", ts),  # not the consumption counter
            reading("GM-2", "volume", 5 + 0.02 * i, "m³", ts),
            reading("HM-1", "heat_energy", 1000 + 0.5 * i, "kWh", ts),
            reading("HM-1", "volume", 300 + 0.1 * i, "m³", ts),  # a heat meter's water is not heat
            reading("HM-1", "supply_temperature", 55.0, "°C", ts),
        ])
        if i % 10 == 0:
            await rig.engine.tick()
    rig.clock.set(T0 + timedelta(hours=1, minutes=3))
    await rig.engine.tick()
    get = rig.latest
    assert (await get("energy.gas_m3", "hour", T0, {"device": "GM-1"}))["value"] == pytest.approx(0.6)
    assert (await get("energy.gas_m3", "hour", T0, {"sub_item": "households"}))["value"] == pytest.approx(0.6)
    total = await get("energy.gas_m3", "hour", T0)
    assert total["value"] == pytest.approx(0.6 + 1.2) and total["samples"] == 2
    heat = await get("energy.heat_kwh", "hour", T0)
    assert heat["value"] == pytest.approx(30.0) and heat["unit"] == "kWh"
    assert "004 8.4.8 d)" in heat["clauses"]
