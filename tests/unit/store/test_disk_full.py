"""Disk full without root: SQLite's ``max_page_count`` stands in for a full file system (issue 10 defect 2).

The real-file-system version (a small tmpfs, the whole daemon restarted on it) is
``tests/integration/test_disk_full.py``; this one runs everywhere and drives the store's own
mechanism: SQLITE_FULL enters disk-full mode, telemetry is paused and counted, alarm steps and events
still commit (old telemetry makes way), and the mode ends by itself once there is room again.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.ids import new_id
from edge.records import AlarmRecord, AlarmState, Event, Reading, Severity
from edge.store import Store
from edge.store.health import DISK_FULL, StoreHealthSource
from edge.store.space import growth_limit, is_disk_full
from edge.tasks import cancel_and_wait
from tests.helpers.sink import RecordingSink
from tests.helpers.sql import sql_one
from tests.helpers.waiting import eventually

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def readings(n: int, start: int = 0) -> list[Reading]:
    return [Reading("B1-EM-01", "energy_import", float(start + i), "kWh", T0 + timedelta(seconds=start + i))
            for i in range(n)]


async def _cap_pages(store: Store, pages: int) -> None:
    assert store._db._writer_db is not None
    await store._db._writer_db.run(lambda conn: conn.execute(f"PRAGMA max_page_count={pages}").fetchall())


async def test_sqlite_full_pauses_telemetry_keeps_alarms_and_recovers(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db", maintenance_interval_s=0, min_free_bytes=0, reserve_bytes=0) as store:
        await store.append_readings(readings(2000))
        page_count = (await sql_one(store, "PRAGMA page_count"))[0]
        await _cap_pages(store, page_count + 2)
        start = 2000
        while not store.disk.full:  # fill the "disk"
            await store.append_readings(readings(500, start))
            start += 500
            assert start < 200_000, "the page cap never filled"
        assert store.disk_changed.is_set()
        stored_before = await store.count("readings")
        # Telemetry is paused and counted, not an error: sources keep running.
        assert await store.append_readings(readings(100, 10**6)) == []
        assert store.disk.telemetry_paused >= 100
        assert await store.count("readings") == stored_before
        # Alarm steps and events still commit: the oldest telemetry makes way for them.
        alarm = AlarmRecord(new_id(), "fire.hydrant_pressure_low", AlarmState.RAISED, T0, "B1-HP-01", message="水压低")
        for i in range(30):
            await store.append_alarm_records([replace_id(alarm, i)])
            await store.append_events([Event("device.fault", T0, "B1-EM-01", data={"n": i, "pad": "x" * 2000})])
        assert await store.count("alarm_log") == 30
        assert await store.count("events") >= 30
        # Room again: a maintenance pass leaves disk-full mode and persists what was paused.
        await _cap_pages(store, 1_000_000)
        store.disk_changed.clear()
        await store.maintain()
        assert not store.disk.full and store.disk_changed.is_set()
        assert await store.counter("store.telemetry_paused") >= 100
        assert await store.append_readings(readings(10, 2 * 10**6)) != []


def replace_id(alarm: AlarmRecord, i: int) -> AlarmRecord:
    from dataclasses import replace

    return replace(alarm, alarm_id=f"{alarm.alarm_id}-{i}")


async def test_a_store_opened_on_a_full_database_starts_and_makes_room_first(tmp_path: Path) -> None:
    """Start-up runs maintenance before any other write: a quota already exceeded is enforced in open()."""
    path = tmp_path / "s.db"
    async with Store(path, maintenance_interval_s=0, min_free_bytes=0, reserve_bytes=0) as store:
        await store.append_readings(readings(20_000))
        used = await store.used_bytes()
    async with Store(path, maintenance_interval_s=0, min_free_bytes=0, reserve_bytes=0,
                     quota_bytes=used // 4) as store:
        assert await store.used_bytes() <= used // 4
        assert await store.count("readings") < 20_000
        assert await store.counter("store.evictions") >= 1


async def test_free_space_mark_evicts_only_telemetry(tmp_path: Path, monkeypatch) -> None:
    """Below the low-water mark, old telemetry is evicted to stop growth; alarm steps never are."""
    import edge.store.maintenance as store_module

    async with Store(tmp_path / "s.db", maintenance_interval_s=0, min_free_bytes=0, reserve_bytes=0) as store:
        await store.append_readings(readings(20_000))
        alarm = AlarmRecord(new_id(), "device.offline", AlarmState.RAISED, T0, "B1-EM-02")
        await store.append_alarm_records([alarm])
        allocated = await store.allocated_bytes()
        # The file system "has" 64 KiB left and the store must keep 1 MiB free.
        monkeypatch.setattr(store_module, "free_bytes", lambda _path: 64 * 1024)
        store.min_free_bytes = 1 << 20
        assert await store.keep_free_space() is True
        assert await store.used_bytes() <= growth_limit(allocated, 64 * 1024, 1 << 20)
        assert await store.count("alarm_log") == 1
        assert await store.count("readings") < 20_000
        # With nothing left to evict, the store is full: it says so and keeps the alarm.
        monkeypatch.setattr(store_module, "free_bytes", lambda _path: 0)
        store.min_free_bytes = 1 << 40
        await store.maintain()
        assert store.disk.full
        assert await store.count("alarm_log") == 1


def test_disk_full_is_recognised_through_the_cause_chain() -> None:
    full = sqlite3.OperationalError("database or disk is full")
    wrapped = RuntimeError("store write failed")
    wrapped.__cause__ = full
    assert is_disk_full(full) and is_disk_full(wrapped) and is_disk_full(OSError(28, "No space left on device"))
    assert not is_disk_full(sqlite3.OperationalError("database is locked")) and not is_disk_full(OSError(13, "x"))


async def test_disk_changed_wakes_a_waiter(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db", maintenance_interval_s=0, min_free_bytes=0, reserve_bytes=0) as store:
        store.disk_changed.clear()
        waiter = asyncio.create_task(store.disk_changed.wait())
        store.disk.enter(T0, "test")
        store.disk_changed.set()
        await asyncio.wait_for(waiter, 1)


async def test_a_folder_without_room_for_the_reserve_file_still_opens(tmp_path: Path, monkeypatch) -> None:
    """A reserve that cannot be created for another reason than space (permissions) is skipped, not fatal."""
    import os

    real = os.posix_fallocate

    def refuse(fd: int, offset: int, length: int) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "posix_fallocate", refuse)
    async with Store(tmp_path / "s.db", maintenance_interval_s=0, min_free_bytes=0, reserve_bytes=1 << 20) as store:
        assert await store.append_readings(readings(10)) != []
        assert store.reserve.held and not store.disk.full
    monkeypatch.setattr(os, "posix_fallocate", real)


async def test_a_poll_shape_first_seen_by_a_paused_write_is_stored_with_its_next_poll(tmp_path: Path) -> None:
    """The write that finds the disk full is dropped (paused telemetry); if it carried the first poll of a
    new shape, that shape must still be stored with the next such poll, or its polls have no names."""
    async with Store(tmp_path / "s.db", maintenance_interval_s=0, min_free_bytes=0, reserve_bytes=0) as store:
        await store.append_readings(readings(2000))
        page_count = (await sql_one(store, "PRAGMA page_count"))[0]
        await _cap_pages(store, page_count + 1)

        def new_shape(n: int, start: int) -> list[Reading]:
            return [Reading("B1-EM-02", f"p{k:03d}", float(start + i), "kWh", T0 + timedelta(seconds=start + i))
                    for i in range(n) for k in range(40)]  # 40-point polls: a shape the store has not seen

        start = 10**6
        while not store.disk.full:
            await store.append_readings(new_shape(50, start))
            start += 50
            assert start < 10**6 + 100_000, "the page cap never filled"
        await _cap_pages(store, 1_000_000)
        await store.maintain()
        assert not store.disk.full
        assert await store.append_readings(new_shape(5, 2 * 10**6)) != []
        orphans = await sql_one(store, "SELECT count(*) FROM polls WHERE shape NOT IN (SELECT id FROM poll_shapes)")
        assert orphans[0] == 0
        assert await store.count("readings") == 40 * await sql_one_int(store, "SELECT count(*) FROM polls WHERE "
                                                                              "device_id = 'B1-EM-02'") + 2000


async def sql_one_int(store: Store, sql: str) -> int:
    return int((await sql_one(store, sql))[0])


async def _first_report(store: Store) -> list[Event]:
    """What the store's health source says when the daemon starts on ``store``."""
    source, sink = StoreHealthSource(store), RecordingSink()
    task = asyncio.create_task(source.run(sink))
    try:
        await eventually(lambda: source._reported is not None, what="the first disk report")
    finally:
        await cancel_and_wait(task)
    return sink.events_seen


async def test_space_back_while_the_daemon_was_down_clears_the_alarm_it_left_open(tmp_path: Path) -> None:
    """Stopped in disk-full mode, restarted after staff freed the disk: the open ``store.disk_full``
    alarm restored from the store must clear. Before, the first report said nothing when the disk was
    fine (nothing had changed in this run), and the alarm stayed open until the next episode."""
    path = tmp_path / "s.db"
    async with Store(path, maintenance_interval_s=0, min_free_bytes=0, reserve_bytes=0) as store:
        await store.append_alarm_records([AlarmRecord(new_id(), DISK_FULL, AlarmState.RAISED, T0, None,
                                                      severity=Severity.CRITICAL, message="存储空间已满")])
        assert [a.code for a in await store.open_alarms()] == [DISK_FULL]
    async with Store(path, maintenance_interval_s=0, min_free_bytes=0, reserve_bytes=0) as store:
        assert not store.disk.full
        (cleared,) = await _first_report(store)
    assert cleared.code == DISK_FULL and cleared.data["active"] is False and cleared.severity == Severity.INFO


async def test_a_start_with_room_and_no_open_alarm_says_nothing(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db", maintenance_interval_s=0, min_free_bytes=0, reserve_bytes=0) as store:
        assert await _first_report(store) == []


async def test_a_start_on_a_full_disk_says_so(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db", maintenance_interval_s=0, min_free_bytes=0, reserve_bytes=0) as store:
        store.disk.enter(T0, "test")
        (raised,) = await _first_report(store)
    assert raised.code == DISK_FULL and raised.data["active"] is True and raised.severity == Severity.CRITICAL
