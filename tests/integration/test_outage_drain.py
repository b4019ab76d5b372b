"""A day of a 500-device estate piles up during a platform outage, then drains in the right order."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.ids import new_id
from edge.records import AlarmRecord, AlarmState, Event, Reading, Severity
from edge.store import Store
from edge.uplink import BreakerState, Uplink
from tests.helpers.config import load
from tests.helpers.platform import PlatformSim
from tests.helpers.sql import sql_one
from tests.helpers.waiting import eventually

DEVICES = 500
INTERVAL = timedelta(minutes=15)
DAY_START = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # 00:00 Asia/Shanghai


@pytest.mark.slow
async def test_outage_then_drain_alarms_first_oldest_first_no_duplicates(tmp_path: Path,
                                                                          platform_sim: PlatformSim) -> None:
    config = load(tmp_path, platform_url=platform_sim.url, ca=platform_sim.ca,
                  extra={"platform": {"client_secret": "!secret platform_client_secret",
                                      "breaker_reset_s": 0.3}})
    platform_sim.faults(outage=True)
    expected = {"telemetry": 0, "alarm": 0, "event": 0}
    async with Store.from_config(config.store) as store:
        async with Uplink.from_config(store, config) as uplink:
            # 24 simulated hours: every 15 minutes each device reports; now and then an alarm and an event.
            ts = DAY_START
            step = 0
            while ts < DAY_START + timedelta(days=1):
                batch = [Reading(f"D{d:03d}", "energy_import", float(step), "kWh", ts) for d in range(DEVICES)]
                await store.append_readings(batch)
                expected["telemetry"] += len(batch)
                if step % 8 == 0:
                    alarm_id = new_id()
                    await store.append_alarm_records([
                        AlarmRecord(alarm_id, "fire.hydrant_pressure_low", AlarmState.RAISED, ts, "D001"),
                        AlarmRecord(alarm_id, "fire.hydrant_pressure_low", AlarmState.CLEARED,
                                    ts + timedelta(minutes=5), "D001"),
                    ])
                    await store.append_events([Event("device.offline", ts, "D002", Severity.WARNING)])
                    expected["alarm"] += 2
                    expected["event"] += 1
                ts += INTERVAL
                step += 1
            await eventually(lambda: uplink.breaker.times_opened >= 1, what="the outage tripping the breaker")
            assert platform_sim.stats()["records"] == {}
            platform_sim.faults()  # the platform is back
            started = time.monotonic()
            while not await uplink.drained():
                assert time.monotonic() - started < 120, uplink.status()
                await asyncio.sleep(0.1)
            assert uplink.breaker.state is BreakerState.CLOSED
        cursor = await store.cursor("telemetry")  # type: ignore[arg-type]
        newest = await sql_one(store, "SELECT max(id) FROM readings")
        assert newest is not None and cursor == newest[0]

    delivered = platform_sim.records()
    kinds = [r["kind"] for r in delivered]
    assert {k: kinds.count(k) for k in expected} == expected
    ids = [r["id"] for r in delivered]
    assert len(ids) == len(set(ids)), "duplicates reached the platform"
    assert platform_sim.stats()["counters"].get("records_duplicate", 0) == 0
    # Alarms first: every alarm step was accepted before the first event and before any telemetry.
    last_alarm = max(i for i, k in enumerate(kinds) if k == "alarm")
    first_telemetry = kinds.index("telemetry")
    first_event = kinds.index("event")
    assert last_alarm < first_event < first_telemetry
    # Oldest first within each lane: alarm and event lanes in exact order; telemetry in order up to
    # the requests in flight at once (concurrency x batch size).
    for kind in ("alarm", "event"):
        lane_ids = [r["id"] for r in delivered if r["kind"] == kind]
        assert lane_ids == sorted(lane_ids)
    telemetry = [r["id"] for r in delivered if r["kind"] == "telemetry"]
    rank = {rid: i for i, rid in enumerate(sorted(telemetry))}
    window = config.platform.concurrency * config.platform.batch_size
    assert max(abs(rank[rid] - i) for i, rid in enumerate(telemetry)) < window
