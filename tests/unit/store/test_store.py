"""The store on a real SQLite file: durability settings, ordering, quota eviction, evidence."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.errors import StoreError
from edge.ids import new_id
from edge.records import AlarmRecord, AlarmState, Event, Lane, Reading
from edge.store import Store, codec
from tests.helpers.sql import migrate, sql_one, sql_rows, sql_write

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def readings(n: int, start: int = 0) -> list[Reading]:
    return [Reading("B1-EM-01", "energy_import", float(start + i), "kWh", T0 + timedelta(seconds=start + i))
            for i in range(n)]


async def test_wal_full_sync_and_time_ordered_ids(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db", maintenance_interval_s=0) as store:
        assert (await sql_one(store, "PRAGMA journal_mode"))[0] == "wal"
        assert (await sql_one(store, "PRAGMA synchronous"))[0] == 2  # FULL
        # synchronous is per connection: what makes a commit durable is the writer's setting.
        assert store._db._writer_db is not None
        assert await store._db._writer_db.run(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0]) == 2
        first = await store.append_readings(readings(500))
        second = await store.append_readings(readings(500, 500))
        ids = first + second
        assert ids == sorted(ids) and len(set(ids)) == 1000 and all(len(i) == 26 for i in ids)
        pending = await store.pending(Lane.TELEMETRY, "", 3)
        assert [p.id for p in pending] == ids[:3]
        assert codec.plain(pending[0].payload) == {  # one poll of one reading: each second is a poll here
            "id": ids[0], "device_id": "B1-EM-01", "ts": "2026-11-01T00:00:00.000Z",
            "points": [{"point": "energy_import", "value": 0.0, "unit": "kWh", "quality": "good"}]}


async def test_concurrent_writers_share_commits(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db", batch_max_delay_ms=20, maintenance_interval_s=0) as store:
        await asyncio.gather(*(store.append_readings(readings(10, 10 * k)) for k in range(50)))
        assert await store.count("readings") == 500
        assert store.commits < 50  # group commit: fewer fsyncs than callers


async def test_acknowledged_rows_are_on_disk_before_close(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path, maintenance_interval_s=0)
    await store.open()
    await store.append_readings(readings(100))
    # Read with an independent connection while the store is still open: committed means visible.
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT count(*) FROM readings").fetchone()[0] == 100
    await store.close()


async def test_a_failing_write_does_not_take_good_ones_with_it(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db", batch_max_delay_ms=50, maintenance_interval_s=0) as store:
        good = asyncio.create_task(store.append_readings(readings(10)))
        bad = asyncio.create_task(sql_write(store, "INSERT INTO no_such_table VALUES (?)", [(1,)]))
        await good
        with pytest.raises(StoreError):
            await bad
        assert await store.count("readings") == 10


async def test_outbox_cursor_ack_is_durable_and_monotonic(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with Store(path, maintenance_interval_s=0) as store:
        ids = await store.append_readings(readings(10))
        await store.ack(Lane.TELEMETRY, ids[5])
        await store.ack(Lane.TELEMETRY, ids[2])  # an older ack never moves the cursor back
    async with Store(path, maintenance_interval_s=0) as store:
        assert await store.cursor(Lane.TELEMETRY) == ids[5]
        pending = await store.pending(Lane.TELEMETRY, ids[5], 100)
        assert [p.id for p in pending] == ids[6:]
        backlog = {b.lane: b for b in await store.backlog()}
        assert backlog[Lane.TELEMETRY].pending == 4


async def test_quota_evicts_oldest_telemetry_first_and_records_it(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db", maintenance_interval_s=0) as store:
        alarm_id = new_id()
        await store.append_alarm_records([AlarmRecord(alarm_id, "fire.hydrant_pressure_low", AlarmState.RAISED, T0,
                                                      "B1-HP-01")])
        for k in range(20):
            await store.append_readings(readings(1000, 1000 * k))
        used = await store.used_bytes()
        store.quota_bytes = used // 2
        evicted = await store.enforce_quota(chunk=2000)
        assert evicted > 0
        assert await store.used_bytes() <= store.quota_bytes
        remaining = await sql_rows(store, "SELECT min(value), count(*) FROM readings")
        assert remaining[0][0] >= evicted - 1  # the oldest went first
        assert await store.count("alarm_log") == 1  # alarms are evicted last: still here
        counters = await store.counters()
        assert counters["store.evicted.telemetry"] == evicted
        assert counters["store.evictions"] >= 1
        events = await sql_rows(store, "SELECT code, data FROM events WHERE code='store.eviction'")
        assert events and '"lane":"telemetry"' in events[0][1]


async def test_evidence_is_kept_as_a_file_and_traversal_is_refused(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db", maintenance_interval_s=0) as store:
        (eid,) = await store.append_events([Event("fire.lane_blocked", T0, "CAM-1", evidence=b"\xff\xd8jpeg")])
        path = store.evidence_file(f"{eid}.jpg")
        assert path is not None and path.read_bytes() == b"\xff\xd8jpeg"
        assert store.evidence_file("../s.db") is None
        assert store.evidence_file("..%2Fs.db") is None
        assert store.evidence_file("/etc/passwd") is None


async def test_alarm_steps_update_current_state(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db", maintenance_interval_s=0) as store:
        a = new_id()
        await store.append_alarm_records([AlarmRecord(a, "fire.hydrant_pressure_low", AlarmState.RAISED, T0, "HP")])
        assert [x.alarm_id for x in await store.open_alarms()] == [a]
        await store.append_alarm_records([AlarmRecord(a, "fire.hydrant_pressure_low", AlarmState.ACKNOWLEDGED,
                                                       T0 + timedelta(minutes=1), "HP", actor="张三")])
        await store.append_alarm_records([AlarmRecord(a, "fire.hydrant_pressure_low", AlarmState.RESOLVED,
                                                      T0 + timedelta(minutes=9), "HP", actor="张三", note="阀门已开")])
        row = await sql_one(store, "SELECT state, is_open, acked_by, note FROM alarms WHERE alarm_id=?", (a,))
        assert row == ("resolved", 0, "张三", "阀门已开")
        assert await store.open_alarms() == []
        assert await store.count("alarm_log") == 3


async def test_component_migrations_apply_once(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    scripts = ["CREATE TABLE panel_users (name TEXT PRIMARY KEY);"]
    async with Store(path, maintenance_interval_s=0) as store:
        await migrate(store, "panel", scripts)
        await migrate(store, "panel", scripts)  # idempotent
        scripts.append("ALTER TABLE panel_users ADD COLUMN role TEXT;")
        await migrate(store, "panel", scripts)
        cols = [r[1] for r in await sql_rows(store, "PRAGMA table_info(panel_users)")]
        assert cols == ["name", "role"]
        assert (await sql_one(store, "SELECT version FROM component_schema WHERE component='panel'"))[0] == 2


async def test_uploaded_telemetry_past_retention_is_pruned_and_nothing_else(tmp_path: Path) -> None:
    from edge.clock import ManualClock

    clock = ManualClock(datetime(2026, 11, 1, tzinfo=UTC))
    async with Store(tmp_path / "s.db", maintenance_interval_s=0, retention_days=1, clock=clock) as store:
        ids = await store.append_readings(readings(10))
        await store.ack(Lane.TELEMETRY, ids[4])  # half uploaded
        # Ids are minted from wall time, so look at them from two days in the future.
        clock.set(datetime.now(UTC) + timedelta(days=2))
        assert await store.prune_uploaded() == 5
        left = [r[0] for r in await sql_rows(store, "SELECT id FROM readings ORDER BY id")]
        assert left == ids[5:]  # not yet uploaded: kept however old
        assert await store.counter("store.pruned.telemetry") == 5
