"""The demo clock: the running hour's figures within minutes, marked demo, never in a real estate's config."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from edge.indicators.demo_clock import DEMO_DIMENSION, DEMO_RUNNING_HOUR, is_demo_key, running_hour

from .conftest import T0, estate, reading

MIN = timedelta(minutes=1)
ONE = [{"id": "EM-1", "name": "电梯电表", "category": "electricity", "sub_item": "lifts", "poll_interval_s": 60}]


def test_a_real_estate_cannot_turn_the_demo_clock_on() -> None:
    with pytest.raises(ValidationError, match=r"demo_period_s is a demo clock: it needs estate.demo: true"):
        estate(ONE, indicators={"demo_period_s": 60})
    demo = estate(ONE, indicators={"demo_period_s": 60},
                  estate={"id": "EST-T", "name": "测试花园", "gateway_id": "GW-T", "demo": True})
    assert demo.indicators.demo_period_s == 60 and demo.estate.demo
    assert estate(ONE).indicators.demo_period_s is None  # off unless asked for


async def test_running_hour_figures_are_marked_demo_and_do_not_close_the_hour(make_rig) -> None:
    start = T0 + 5 * MIN  # a demo started at :05
    rig = await make_rig(ONE, start=start)
    await rig.engine.start()
    for i in range(4):
        rig.clock.set(start + i * MIN)
        await rig.feed([reading("EM-1", "energy_import", 100 + i, "kWh", start + i * MIN)])
    rig.clock.set(start + 3 * MIN + timedelta(seconds=30))
    assert await rig.engine.tick() == []  # no period has closed: without the demo clock, nothing

    records = await running_hour(rig.engine, 60)
    assert records, "the demo clock computed nothing"
    assert all(r.dimensions.get(DEMO_DIMENSION) == DEMO_RUNNING_HOUR and is_demo_key(r.key) for r in records)
    assert {r.period_start for r in records} == {T0} and {r.period_end for r in records} == {rig.clock.now()}
    assert {r.version for r in records} == {9}  # 8.5 minutes into the hour: the 9th one-minute step
    stored = await rig.records("energy.electricity_kwh", "hour")
    device = [r for r in stored if r["dimensions"] == {"device": "EM-1", DEMO_DIMENSION: DEMO_RUNNING_HOUR}]
    assert device and device[0]["value"] == pytest.approx(3.0)  # 100 -> 103 kWh so far
    uptime = await rig.records("gateway.uptime", "hour")
    assert uptime and uptime[0]["coverage"] == 1.0 and 0 < uptime[0]["value"] < 0.1  # 3.5 of 60 minutes ran

    # A restart in the same hour: the demo records are not taken for the closed hour.
    await rig.restart()
    await rig.engine.start()
    rig.clock.set(T0 + timedelta(hours=1, minutes=3))
    await rig.feed([reading("EM-1", "energy_import", 140, "kWh", T0 + timedelta(minutes=59))])
    await rig.engine.tick()
    real = await rig.latest("energy.electricity_kwh", "hour", T0, {"device": "EM-1"})
    assert real["value"] == pytest.approx(40.0) and not is_demo_key(real["key"])
