"""Indicator values for scripted scenarios: the real store, normaliser and pipeline on a manual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge.alarms import AlarmManager
from edge.records import Event, Severity
from edge.rules import AlarmTransition, TransitionKind
from tests.helpers.sql import sql_rows, sql_write

from .conftest import T0, reading

H = timedelta(hours=1)
MIN = timedelta(minutes=1)
ONLY_EM1 = [{"id": "EM-1", "name": "电梯电表", "category": "electricity", "sub_item": "lifts",
             "poll_interval_s": 60}]


async def run_minutes(rig, start: datetime, count: int, make, tick_every: int = 10) -> None:
    """Feed ``make(ts, i)`` readings once a minute, ticking the engine as the daemon would."""
    for i in range(count):
        ts = start + i * MIN
        rig.clock.set(ts)
        await rig.feed(make(ts, i))
        if i % tick_every == 0:
            await rig.engine.tick()


async def settle(rig, until: datetime) -> None:
    rig.clock.set(until)
    await rig.engine.tick()


async def test_known_hour_every_series_indicator(make_rig) -> None:
    rig = await make_rig()

    def make(ts, i):
        out = [
            reading("EM-1", "energy_import", 100 + 0.5 * i, "kWh", ts),
            reading("EM-1", "energy_export", 7.0, "kWh", ts),  # not consumption
            reading("WM-1", "volume_forward", 10 + 0.01 * i, "m3", ts),
            reading("HP-1", "pressure", 0.05 if 20 <= i < 30 else 0.30, "MPa", ts),  # 10 minutes below 0.07
            reading("LV-1", "level", 6.0 if i < 15 else 3.0, "m", ts),  # 15 minutes above 5.0
            reading("ENV-1", "temperature", 20.0, "°C", ts),
        ]
        if i < 30:  # EM-2 answers for the first half hour only
            out.append(reading("EM-2", "energy_import", 50 + 0.2 * i, "kWh", ts))
        return out

    await run_minutes(rig, T0, 61, make)
    await settle(rig, T0 + H + 3 * MIN)
    get = rig.latest
    assert (await get("energy.electricity_kwh", "hour", T0, {"device": "EM-1"}))["value"] == pytest.approx(30.0)
    em2 = await get("energy.electricity_kwh", "hour", T0, {"device": "EM-2"})
    assert em2["value"] == pytest.approx(0.2 * 29) and em2["coverage"] == pytest.approx(0.5)
    assert (await get("energy.electricity_kwh", "hour", T0, {"sub_item": "lifts"}))["value"] == pytest.approx(30.0)
    total = await get("energy.electricity_kwh", "hour", T0)
    assert total["value"] == pytest.approx(30 + 5.8) and total["samples"] == 2 and total["unit"] == "kWh"
    assert (await get("energy.water_m3", "hour", T0))["value"] == pytest.approx(0.6)
    pressure = await get("fire.hydrant_pressure_compliance", "hour", T0, {"device": "HP-1"})
    assert pressure["value"] == pytest.approx(50 / 60) and pressure["samples"] == 60
    assert pressure["clauses"] == ["004 8.3.3", "002 5.5.4"] and pressure["unit"] == "ratio"
    assert (await get("fire.water_level_compliance", "hour", T0))["value"] == pytest.approx(45 / 60)
    # EM-2 stopped at minute 29; with offline_after_failures=3 it counts online until 29 + 3 min.
    online = await get("device.online_rate", "hour", T0)
    assert online["value"] == pytest.approx((5 * 3600 + 32 * 60) / (6 * 3600)) and online["samples"] == 6
    # Expected: EM-1 2 points, EM-2 1, the rest 1 point each, 60 polls an hour.
    completeness = await get("data.completeness", "hour", T0)
    assert completeness["value"] == pytest.approx((60 * 2 + 30 + 60 * 4) / (60 * 7))
    kinds = await get("facility.monitored_kinds", "hour", T0)
    assert kinds["value"] == 2 and kinds["coverage"] == 1.0  # energy metering and environment
    assert all(r["version"] == 1 for r in await rig.records())
    assert {r["estate_id"] for r in await rig.records()} == {"EST-T"}


async def test_meter_rollover_counts_through_the_wrap(make_rig) -> None:
    rig = await make_rig(ONLY_EM1)
    # A 5-digit register: 99 990 -> 99 999.x -> wraps to 0 -> 30 kWh later. 1 kWh a minute throughout.
    await run_minutes(rig, T0, 61, lambda ts, i: [reading("EM-1", "energy_import", (99_990 + i) % 100_000,
                                                          "kWh", ts)])
    await settle(rig, T0 + H + 3 * MIN)
    record = await rig.latest("energy.electricity_kwh", "hour", T0, {"device": "EM-1"})
    assert record["value"] == pytest.approx(60.0)
    # The normaliser reports the wrap (the pipeline stores its anomaly events, or they wait in it).
    stored = [r[0] for r in await sql_rows(rig.store, "SELECT code FROM events")]
    anomalies = stored + [e.code for e in rig.pipeline.normaliser.drain_events()]
    assert anomalies == ["meter.counter_rollover"]


async def test_meter_replacement_never_counts_negative(make_rig) -> None:
    rig = await make_rig(ONLY_EM1)
    # Old meter to 08:29 at 5 029 kWh, a refurbished meter from 08:30 that starts at 300 kWh.
    await run_minutes(rig, T0, 61, lambda ts, i: [reading("EM-1", "energy_import",
                                                          5000 + i if i < 30 else 300 + (i - 30), "kWh", ts)])
    await settle(rig, T0 + H + 3 * MIN)
    record = await rig.latest("energy.electricity_kwh", "hour", T0, {"device": "EM-1"})
    assert 0 < record["value"] <= 60
    assert record["value"] == pytest.approx(59.0)  # the swap minute itself is unknowable and counts zero


async def test_gap_spreads_consumption_and_late_data_revises(make_rig) -> None:
    rig = await make_rig(ONLY_EM1)
    t10 = T0 + 2 * H  # 10:00 local
    def meter(ts, i):
        return [reading("EM-1", "energy_import", 1000 + (ts - t10).total_seconds() / 60, "kWh", ts)]
    await run_minutes(rig, t10, 21, meter)  # 10:00 .. 10:20, 1 kWh a minute
    await settle(rig, t10 + 2 * H + 10 * MIN)  # 12:10: hours 10 and 11 are emitted with what is known
    first_10 = await rig.latest("energy.electricity_kwh", "hour", t10, {"device": "EM-1"})
    first_11 = await rig.latest("energy.electricity_kwh", "hour", t10 + H, {"device": "EM-1"})
    assert (first_10["value"], first_10["version"]) == (pytest.approx(20.0), 1)
    assert (first_11["value"], first_11["coverage"]) == (0.0, 0.0)
    await run_minutes(rig, t10 + 2 * H + 40 * MIN, 21, meter)  # back at 12:40 .. 13:00
    await settle(rig, t10 + 3 * H + 5 * MIN)
    for hour in (t10, t10 + H, t10 + 2 * H):
        record = await rig.latest("energy.electricity_kwh", "hour", hour, {"device": "EM-1"})
        assert record["value"] == pytest.approx(60.0), hour  # the 140 kWh of the gap spread by time
    assert (await rig.latest("energy.electricity_kwh", "hour", t10, {"device": "EM-1"}))["version"] == 2
    revised_11 = await rig.latest("energy.electricity_kwh", "hour", t10 + H, {"device": "EM-1"})
    assert revised_11["version"] == 2 and revised_11["coverage"] == 0.0
    assert revised_11["key"] == first_11["key"]


async def test_late_readings_make_new_versions_of_hour_and_day(make_rig) -> None:
    rig = await make_rig([{**ONLY_EM1[0], "poll_interval_s": 600},
                          {"id": "HP-1", "name": "p", "category": "fire_pressure", "poll_interval_s": 600}])
    # Local day 2025-03-01 (Shanghai) is 2025-02-28T16:00Z .. 2025-03-01T16:00Z.
    day_start = datetime(2025, 2, 28, 16, tzinfo=UTC)
    rig.clock.set(day_start)
    await rig.engine.start()
    hour15 = day_start + 15 * H
    # Readings every 10 minutes all day; the pressure samples of 15:10-15:50 reach the gateway a day late.
    for i in range(24 * 6 + 1):
        ts = day_start + i * 10 * MIN
        rig.clock.set(ts)
        batch = [reading("EM-1", "energy_import", (ts - day_start).total_seconds() / 3600, "kWh", ts)]
        if not (15 * 6 < i < 16 * 6):
            batch.append(reading("HP-1", "pressure", 0.30, "MPa", ts))
        await rig.feed(batch)
        await rig.engine.tick()
    await settle(rig, day_start + 24 * H + 5 * MIN)
    day_v1 = await rig.latest("fire.hydrant_pressure_compliance", "day", day_start)
    h15_v1 = await rig.latest("fire.hydrant_pressure_compliance", "hour", hour15)
    assert (day_v1["version"], day_v1["value"], day_v1["samples"]) == (1, 1.0, 139)
    assert (h15_v1["value"], h15_v1["samples"]) == (1.0, 1)
    assert h15_v1["coverage"] == pytest.approx(1 / 6, abs=1e-4)
    energy_day = await rig.latest("energy.electricity_kwh", "day", day_start)
    assert energy_day["value"] == pytest.approx(24.0)  # interpolation keeps the day exact

    rig.clock.set(day_start + 24 * H + 30 * MIN)
    await rig.feed([reading("HP-1", "pressure", 0.05 if m < 30 else 0.30, "MPa", hour15 + m * MIN)
                    for m in (10, 20, 30, 40, 50)])
    revised = await rig.engine.tick()
    assert {(r.granularity, r.version) for r in revised if r.code == "fire.hydrant_pressure_compliance"} == {
        ("hour", 2), ("day", 2)}
    h15_v2 = await rig.latest("fire.hydrant_pressure_compliance", "hour", hour15)
    assert h15_v2["key"] == h15_v1["key"] and h15_v2["value"] == pytest.approx(4 / 6)
    assert h15_v2["coverage"] == 1.0
    day_v2 = await rig.latest("fire.hydrant_pressure_compliance", "day", day_start)
    assert day_v2["value"] == pytest.approx(142 / 144) and day_v2["samples"] == 144
    assert (await rig.latest("data.completeness", "day", day_start))["version"] == 2
    # The meter's figures did not change: no new versions of them.
    assert [r for r in revised if r.code == "energy.electricity_kwh"] == []


async def test_day_and_month_boundaries_in_shanghai(make_rig) -> None:
    # 2025-01-31 22:00 local = 14:00Z; through 2025-02-01 02:00 local, 1 kWh a minute.
    start = datetime(2025, 1, 31, 14, 0, tzinfo=UTC)
    rig = await make_rig(ONLY_EM1, start=start)
    await rig.engine.start()
    await run_minutes(rig, start, 4 * 60 + 1, lambda ts, i: [reading("EM-1", "energy_import", float(i), "kWh", ts)],
                      tick_every=30)
    # Let the local day of 2025-02-01 end too (the meter stays silent).
    await settle(rig, datetime(2025, 2, 1, 16, 5, tzinfo=UTC))
    hours = await rig.records("energy.electricity_kwh", "hour")
    totals = {r["period_start"]: r["value"] for r in hours if r["dimensions"] == {}}
    assert [totals[f"2025-01-31T{h}:00:00.000Z"] for h in (14, 15, 16, 17)] == [60.0] * 4
    jan31 = await rig.latest("energy.electricity_kwh", "day", datetime(2025, 1, 30, 16, tzinfo=UTC))
    feb01 = await rig.latest("energy.electricity_kwh", "day", datetime(2025, 1, 31, 16, tzinfo=UTC))
    assert jan31["period_end"] == "2025-01-31T16:00:00.000Z" and jan31["value"] == pytest.approx(120.0)
    assert feb01["period_end"] == "2025-02-01T16:00:00.000Z" and feb01["value"] == pytest.approx(120.0)
    january = await rig.latest("energy.electricity_kwh", "month", datetime(2024, 12, 31, 16, tzinfo=UTC))
    assert january["period_end"] == "2025-01-31T16:00:00.000Z" and january["value"] == pytest.approx(120.0)
    assert not await rig.records("energy.electricity_kwh", "month") or all(
        r["period_start"] != "2025-01-31T16:00:00.000Z" for r in await rig.records(granularity="month"))


async def test_restart_mid_hour_neither_double_counts_nor_gaps(make_rig) -> None:
    rig = await make_rig(ONLY_EM1)
    def meter(ts, i):
        return [reading("EM-1", "energy_import", 500 + 0.25 * ((ts - T0).total_seconds() / 60), "kWh", ts)]
    await run_minutes(rig, T0, 31, meter, tick_every=5)
    await rig.restart()  # 08:30: the daemon restarts
    await run_minutes(rig, T0 + 31 * MIN, 30, meter, tick_every=5)
    await settle(rig, T0 + H + 3 * MIN)
    records = await rig.records("energy.electricity_kwh", "hour")
    assert len(records) == 3 and {r["version"] for r in records} == {1}  # device, sub-item, total: once each
    total = await rig.latest("energy.electricity_kwh", "hour", T0)
    assert total["value"] == pytest.approx(0.25 * 60)
    completeness = await rig.latest("data.completeness", "hour", T0)
    assert completeness["value"] == pytest.approx(1.0)
    # Folding everything again (as after a crash that lost the cursor) changes nothing.
    await sql_write(rig.store, "DELETE FROM ind_series WHERE point LIKE '#cursor:%'")
    await rig.restart()
    rig.clock.set(T0 + 2 * H + 3 * MIN)
    await rig.engine.tick()
    assert [r for r in await rig.records("energy.electricity_kwh", "hour") if r["version"] > 1] == []
    assert (await rig.latest("data.completeness", "hour", T0))["version"] == 1


async def test_backfill_after_downtime_and_nothing_before_epoch(make_rig) -> None:
    rig = await make_rig(ONLY_EM1)
    def meter(ts, i):
        return [reading("EM-1", "energy_import", (ts - T0).total_seconds() / 60, "kWh", ts)]
    await run_minutes(rig, T0, 61, meter)
    await rig.restart()
    rig.clock.set(T0 + 4 * H)  # down for three hours
    await rig.engine.tick()
    starts = sorted({r["period_start"] for r in await rig.records("data.completeness", "hour")})
    assert starts == [f"2025-03-01T0{h}:00:00.000Z" for h in range(3)]  # 03:00-04:00 is not due yet
    down = await rig.latest("device.online_rate", "hour", T0 + 2 * H)
    # The gateway did not run in that hour: no figure (not "every device offline"), coverage 0.
    assert down["value"] is None and down["coverage"] == 0.0
    assert (await rig.latest("gateway.uptime", "hour", T0 + 2 * H))["value"] == 0.0
    # The hour before the gateway's first start is never reported.
    assert all(r["period_start"] >= "2025-03-01T00:00:00.000Z" for r in await rig.records())


async def test_lanes_ebikes_and_alarm_handling(make_rig) -> None:
    rig = await make_rig([{"id": "HP-1", "name": "p", "category": "fire_pressure", "poll_interval_s": 60}])
    await rig.engine.start()
    def at(m):
        return T0 + m * MIN
    def lane(code, m):
        return Event(code, at(m), "CAM-1", data={"zone_id": "north"})
    await rig.pipeline.events([lane("fire.lane_blocked", 10), lane("fire.lane_cleared", 40),
                               lane("fire.lane_blocked", 50),
                               Event("fire.lane_blocked", at(20), "CAM-2", data={"zone_id": "south"}),
                               Event("fire.lane_cleared", at(30), "CAM-2", data={"zone_id": "south"}),
                               *[Event("fire.ebike_entry", at(m), "CAM-3") for m in (5, 6, 59)],
                               Event("fire.ebike_entry", at(61), "CAM-3")])
    manager = AlarmManager(rig.store, clock=rig.clock)
    rig.clock.set(at(20))
    (a, b) = await manager.apply([
        AlarmTransition("fire.hydrant_pressure_low", "HP-1", TransitionKind.RAISE, at(20), Severity.CRITICAL, "low",
                        device_id="HP-1", point="pressure"),
        AlarmTransition("energy.night_flow", "WM-1", TransitionKind.RAISE, at(25), Severity.MAJOR, "leak?",
                        device_id="WM-1"),
    ])
    rig.clock.set(at(30))
    await manager.acknowledge(a.alarm_id, "wang")
    rig.clock.set(at(35))
    await manager.resolve(a.alarm_id, "wang", "稳压泵复位")
    await settle(rig, T0 + H + 3 * MIN)
    get = rig.latest
    assert (await get("fire.lane_block_events", "hour", T0))["value"] == 3
    # north 10-40 (30) and 50-60 (10, still blocked), south 20-30 (10)
    assert (await get("fire.lane_block_minutes", "hour", T0))["value"] == pytest.approx(50.0)
    p50 = await get("fire.lane_clear_time_p50", "hour", T0)
    assert p50["value"] == pytest.approx(20.0) and p50["coverage"] == pytest.approx(2 / 3, abs=1e-4)
    assert (await get("fire.ebike_entry_events", "hour", T0))["value"] == 3
    closure = await get("alarm.closure_rate", "hour", T0)
    assert closure["value"] == 0.5 and closure["samples"] == 2
    assert (await get("alarm.resolve_time_p50", "hour", T0))["value"] == pytest.approx(15.0)
    assert (await get("energy.abnormal_events", "hour", T0))["value"] == 1
    # Later: the north lane clears at 09:20 and staff resolve the other alarm at 09:40.
    await rig.pipeline.events([lane("fire.lane_cleared", 80)])
    rig.clock.set(at(100))
    await manager.resolve(b.alarm_id, "li", "夜间巡查：阀门已关")
    await settle(rig, at(101))
    p50 = await get("fire.lane_clear_time_p50", "hour", T0)
    assert (p50["version"], p50["value"], p50["coverage"]) == (2, pytest.approx(30.0), 1.0)  # median(30, 10, 30)
    closure = await get("alarm.closure_rate", "hour", T0)
    assert (closure["version"], closure["value"]) == (2, 1.0)
    assert (await get("alarm.resolve_time_p50", "hour", T0))["value"] == pytest.approx((15 + 75) / 2)
    # Blocked minutes of 08:00-09:00 did not change: no new version of it.
    assert (await get("fire.lane_block_minutes", "hour", T0))["version"] == 1
    # 09:00-10:00 carries the rest of the north episode (20 minutes) and one e-bike.
    await settle(rig, T0 + 2 * H + 3 * MIN)
    assert (await get("fire.ebike_entry_events", "hour", T0 + H))["value"] == 1
    assert (await get("fire.lane_block_minutes", "hour", T0 + H))["value"] == pytest.approx(20.0)


async def test_cameras_count_in_online_rate_and_completeness(make_rig) -> None:
    """Issue 10 defect 3: a camera whose stream is dead half the hour is online half the hour.

    A dead stream still sends health readings (stream_alive 0, frame_age_s); only the readings that
    exist while frames arrive (frozen, covered) count as the camera's reports.
    """
    camera = {"id": "CAM-1", "name": "消防通道", "location": {"building": "1栋"}, "onvif": False,
              "stream": {"rtsp_uri": "rtsp://127.0.0.1/x"}, "health": {"interval_s": 60}}
    rig = await make_rig(ONLY_EM1, cameras=[camera])

    def both(ts, i):
        meter = [reading("EM-1", "energy_import", float(i), "kWh", ts)]
        if i < 30:  # the stream delivers frames for the first half hour, then dies
            health = [reading("CAM-1", p, v, "", ts) for p, v in
                      (("stream_alive", 1.0), ("reachable", 1.0), ("frozen", 0.0), ("covered", 0.0))]
        else:
            health = [reading("CAM-1", "stream_alive", 0.0, "", ts), reading("CAM-1", "reachable", 0.0, "", ts),
                      reading("CAM-1", "frame_age_s", 60.0 * (i - 29), "s", ts)]
        return meter + health

    await run_minutes(rig, T0, 61, both)
    rig.clock.set(T0 + H + 3 * MIN)
    await rig.engine.tick()
    online = await rig.latest("device.online_rate", "hour", T0)
    # The meter is online all hour; the camera until 3 missed checks after its last frame (minute 29 + 3).
    assert online["value"] == pytest.approx((1.0 + 32 / 60) / 2, abs=0.02)
    completeness = await rig.latest("data.completeness", "hour", T0)
    assert completeness["value"] == pytest.approx((60 + 30 * 2) / (60 + 60 * 2), abs=0.02)


async def test_the_hour_the_gateway_started_is_reported_with_its_uptime(make_rig) -> None:
    """Issue 13 point 5: started at 00:53:30, the first hour is not a failing estate with coverage 1.

    The meter reports every minute while the gateway runs (6.5 of 60 minutes): completeness and the
    online rate are taken over those minutes (both 1.0, healthy), their coverage is the uptime share
    (0.108), and gateway.uptime says so. The next hour, run in full, has coverage 1.
    """
    start = T0 + 53 * MIN + timedelta(seconds=30)
    rig = await make_rig(ONLY_EM1, start=start)

    def meter(ts, i):
        return [reading("EM-1", "energy_import", 100 + i / 10, "kWh", ts)]

    await rig.engine.start()
    await run_minutes(rig, start, 67, meter, tick_every=1)  # until 02:00
    await settle(rig, T0 + 2 * H + 3 * MIN)
    share = 390 / 3600
    first = {code: await rig.latest(code, "hour", T0) for code in
             ("data.completeness", "device.online_rate", "gateway.uptime")}
    assert abs(first["gateway.uptime"]["value"] - share) < 0.001 and first["gateway.uptime"]["samples"] == 1
    for code in ("data.completeness", "device.online_rate"):
        assert first[code]["value"] >= 0.98, (code, first[code])  # healthy while it ran
        assert abs(first[code]["coverage"] - share) < 0.001, (code, first[code])
    second = await rig.latest("data.completeness", "hour", T0 + H)
    assert second["coverage"] == 1.0 and second["value"] >= 0.98
    assert (await rig.latest("gateway.uptime", "hour", T0 + H))["value"] == 1.0
    # The inventory's field completeness is its own figure (what seed 000 5.4's 98 % is about).
    from edge.inventory import field_completeness

    filled, required, entries = field_completeness(rig.config)
    fields = await rig.latest("inventory.field_completeness", "hour", T0 + H)
    assert entries == 1 and filled < required  # no profile, no floor in this config
    assert fields["value"] == round(filled / required, 6) and fields["samples"] == 1


@pytest.mark.parametrize("odd_point", [False, True])
async def test_the_counted_fold_stores_what_the_reading_by_reading_fold_stores(make_rig, monkeypatch,
                                                                              odd_point: bool) -> None:
    """The fast fold (presence counted in SQLite, one row per poll) against the general one, byte for byte.

    The mix covers what the fold decides per point: meter totals and ranged points (values kept),
    plain points (presence only), a device the estate does not know (left out), two readings of one
    point in one millisecond (the later wins), a late poll, polls cut across fold chunks, and with
    ``odd_point`` a point whose name holds the signature's separator (that chunk walks the rows).
    """
    monkeypatch.setattr("edge.indicators.engine.FOLD_CHUNK", 37)  # chunks end inside polls

    def make(ts, i):
        out = [
            reading("EM-1", "energy_import", 100 + 0.5 * i, "kWh", ts),
            reading("EM-1", "voltage", 220.0, "V", ts),
            reading("HP-1", "pressure", 0.30, "MPa", ts),
            reading("LV-1", "level", 3.0 + i / 100, "m", ts),
            reading("LV-1", "level", 3.5, "m", ts),  # the same instant again: the later value wins
            reading("ENV-1", "temperature", 20.0, "°C", ts),
            reading("ENV-1", "humidity", 50.0, "%", ts),
            reading("GHOST-1", "pressure", 0.1, "MPa", ts),  # not in the estate
        ]
        if odd_point and i == 7:  # a point first seen in the poll that makes the chunk walk its rows
            out += [reading("ENV-1", "co2", 400.0, "ppm", ts), reading("ENV-1", "odd\x1fname", 1.0, "", ts)]
        if i == 12:
            out.append(reading("WM-1", "volume_forward", 10.0, "m3", ts - 30 * MIN))  # late
        return out

    dumps = []
    for counted in (True, False):
        rig = await make_rig()
        rig.engine.counted_fold = counted
        await run_minutes(rig, T0, 25, make, tick_every=5)
        await settle(rig, T0 + H + 3 * MIN)
        series = await sql_rows(rig.store, "SELECT * FROM ind_series WHERE point NOT LIKE '#cursor%'"
                                           " ORDER BY device_id, point, hour_us, seq")  # a cursor holds a (new) id
        points = await sql_rows(rig.store, "SELECT * FROM ind_points ORDER BY device_id, point")
        records = [{k: v for k, v in r.items() if k not in ("id", "generated_at")} for r in await rig.records()]
        dumps.append((series, points, records, rig.engine.stats.readings_folded))
    assert dumps[0][0] and dumps[0][3] == 25 * 8 + 1 + (2 if odd_point else 0)
    for counted, reference, what in zip(dumps[0], dumps[1], ("series", "points", "records", "count"), strict=True):
        assert counted == reference, what
