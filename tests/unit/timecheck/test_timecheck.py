"""Clock-jump detection (monotonic vs wall, platform Date header) and flagging of affected records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from edge.clock import ManualClock
from edge.records import AlarmRecord, AlarmState, Event, Lane, Quality, Reading
from edge.store import Store, codec
from edge.timecheck import JUMP_EVENT, RECOVERED_EVENT, ClockCheck
from tests.helpers.sql import sql_one, sql_rows

T0 = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)


class SteppableClock(ManualClock):
    """Like ManualClock, but ``step`` moves the wall clock alone, as an NTP step or ``date -s`` does."""

    def step(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


async def qualities(store: Store) -> dict[str, int]:
    return {f"{d}/{p}": q for d, p, q in await sql_rows(store, "SELECT device_id, point, quality FROM readings")}


async def events(store: Store, code: str) -> list[dict]:
    rows = await sql_rows(store, "SELECT data FROM events WHERE code=? ORDER BY id", (code,))
    return [json.loads(r[0]) for r in rows]


async def test_backward_step_flags_the_window(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    async with Store(tmp_path / "edge.db", clock=clock, batch_max_delay_ms=1) as store:
        check = ClockCheck(store, clock)
        await store.append_readings([Reading("EM-1", "before", 1.0, "kWh", clock.now())])
        clock.advance(10)
        assert check.check_local() is None
        await store.append_readings([Reading("EM-1", "during", 2.0, "kWh", clock.now())])
        await store.append_events([Event("fire.ebike_entry", clock.now(), "CAM-1")])
        await store.append_alarm_records([AlarmRecord("01JN0000000000000000000000", "device.offline",
                                                      AlarmState.RAISED, clock.now(), "EM-2")])
        clock.set(clock.now() - timedelta(hours=1))  # the RTC came back an hour behind
        jump = check.check_local()
        assert jump is not None and jump.source == "monotonic"
        assert jump.offset_s == -3600
        await store.append_readings([Reading("EM-1", "after", 3.0, "kWh", clock.now())])
        clock.advance(10)
        assert check.check_local() is None
        assert await check.flush() == 1
        assert await qualities(store) == {"EM-1/before": 0, "EM-1/during": int(Quality.UNCERTAIN), "EM-1/after": 0}
        (ebike,) = await events(store, "fire.ebike_entry")
        assert ebike["clock_suspect"] is True
        alarm_data = await sql_one(store, "SELECT data FROM alarm_log")
        assert json.loads(alarm_data[0])["clock_suspect"] is True
        (announced,) = await events(store, JUMP_EVENT)
        assert announced["source"] == "monotonic" and announced["offset_s"] == -3600
        assert announced["flagged"] == {"telemetry": 1, "event": 1, "alarm": 1}
        # The payload the platform gets says "uncertain".
        points = [p for r in await store.pending(Lane.TELEMETRY, "", 10) for p in codec.record_points(r.payload)]
        assert {p["point"]: p["quality"] for p in points} == {"before": "good", "during": "uncertain", "after": "good"}


async def test_forward_step_detected_small_drift_ignored(tmp_path: Path) -> None:
    clock = SteppableClock(T0)
    async with Store(tmp_path / "edge.db", clock=clock, batch_max_delay_ms=1) as store:
        check = ClockCheck(store, clock, step_tolerance_s=2)
        clock.advance(10)
        clock.step(1.5)  # NTP-sized correction: tolerated
        assert check.check_local() is None
        clock.advance(10)
        clock.step(90)
        jump = check.check_local()
        assert jump is not None and jump.offset_s == 90
        await check.flush()
        assert len(await events(store, JUMP_EVENT)) == 1


async def test_platform_date_offset_flags_until_recovered(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    async with Store(tmp_path / "edge.db", clock=clock, batch_max_delay_ms=1) as store:
        check = ClockCheck(store, clock, platform_tolerance_s=30)
        # In step (the header is whole seconds and a little behind): nothing happens.
        assert check.observe_date(format_datetime(T0 - timedelta(seconds=1), usegmt=True)) is None
        assert not check.suspect and check.offset_s == 1
        assert check.observe_date("not a date") is None and check.bad_headers == 1
        await store.append_readings([Reading("PT-1", "a", 0.3, "MPa", clock.now())])
        # The platform says it is 10 minutes later than we think: the gateway clock is behind.
        clock.advance(5)
        jump = check.observe_date(format_datetime(clock.now() + timedelta(minutes=10), usegmt=True))
        assert jump is not None and check.suspect and jump.offset_s == -600
        await store.append_readings([Reading("PT-1", "b", 0.3, "MPa", clock.now())])
        clock.advance(10)
        check.check_local()  # still suspect: this window is flagged too
        await store.append_readings([Reading("PT-1", "c", 0.3, "MPa", clock.now())])
        clock.advance(10)
        assert check.observe_date(format_datetime(clock.now(), usegmt=True)) is None  # NTP fixed it
        assert not check.suspect
        await store.append_readings([Reading("PT-1", "d", 0.3, "MPa", clock.now())])
        clock.advance(10)
        check.check_local()
        await check.flush()
        assert await qualities(store) == {"PT-1/a": 1, "PT-1/b": 1, "PT-1/c": 1, "PT-1/d": 0}
        # "a" was accepted after the last good observation, before the bad one: it is in doubt too.
        (detected,) = await events(store, JUMP_EVENT)
        assert detected["source"] == "platform" and detected["offset_s"] == -600
        (recovered,) = await events(store, RECOVERED_EVENT)
        assert recovered["flagged"]["telemetry"] == 1
        assert check.flagged["telemetry"] == 3
