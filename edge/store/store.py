"""The local store: SQLite in WAL mode, batched group commits, durable on acknowledgement.

Durability choice (the reason this module exists):
    ``journal_mode=WAL`` with ``synchronous=FULL``. In WAL mode, FULL fsyncs the WAL at every
    commit, so a transaction that ``commit()`` returned from survives both ``kill -9`` and power
    loss; NORMAL would survive ``kill -9`` but may lose the last commits on power loss, which is
    exactly the failure an estate control room sees. The price of an fsync per commit is paid
    once per *batch*, not per record: writers enqueue rows and await a future; one writer task
    collects everything that arrives within ``batch_max_delay_ms`` (or ``batch_max_records``)
    into a single transaction and resolves all futures only after that commit returned. So
    ``append_*`` returning means "on disk", and nothing sits in an unbounded RAM queue: callers
    are suspended until their rows are committed (that is the back-pressure).

Ids: each record receives a monotonic ULID (``edge.ids``) when it is accepted; it is the
record's idempotency key upstream and its position in the outbox.

Quota: ``enforce_quota`` (run by the maintenance task) evicts oldest telemetry first, then
events, then indicators, and alarm steps last; every eviction is recorded as a ``store.eviction``
event and counted in ``counters``.

Disk space (``edge.store.space``): beside the quota, the file system's real free space must stay
above ``min_free_bytes``; only telemetry is evicted for that. Maintenance runs once in ``open``,
before any other component writes. On SQLITE_FULL / ENOSPC the store gives back its reserve file,
checkpoints, and enters disk-full mode: telemetry is paused and counted (the rules still see it),
alarm steps, events and indicators are still kept, and ``disk_changed`` is set so the
``store.disk_full`` alarm is raised. Maintenance leaves the mode by itself when space returns.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from edge.clock import Clock, SystemClock, from_us, to_us
from edge.errors import StoreError, StoreFull
from edge.ids import new_ids, ulid_floor
from edge.messages import say
from edge.records import (
    LANE_PRIORITY,
    AlarmRecord,
    AlarmState,
    DeviceRecord,
    Event,
    IndicatorRecord,
    Lane,
    Reading,
    Severity,
)
from edge.store import codec
from edge.store.schema import MIGRATIONS
from edge.store.space import DiskState, Reserve, free_bytes, growth_limit, is_disk_full
from edge.store.writer import PRAGMAS, MultiRowInsert, Statement, WriterConnection
from edge.tasks import cancel_and_wait
from edge.transitions import OpenAlarm

log = logging.getLogger(__name__)

_INSERT_READING = MultiRowInsert("readings", 7)
_INSERT_EVENT = "INSERT INTO events VALUES (?,?,?,?,?,?,?,?)"
_INSERT_ALARM_LOG = "INSERT INTO alarm_log VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
_INSERT_INDICATOR = "INSERT INTO indicators VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"

# Eviction order: what goes first when the disk quota is reached. Alarm steps (raised, disposal)
# go last: they are what the platform scores the estate's closed loop on.
EVICTION_ORDER: tuple[tuple[Lane, str], ...] = (
    (Lane.TELEMETRY, "readings"),
    (Lane.EVENT, "events"),
    (Lane.INDICATOR, "indicators"),
    (Lane.ALARM, "alarm_log"),
)

# The inventory is never evicted: a platform must be able to read every record it ever got.
LANE_TABLES: dict[Lane, str] = {**{lane: table for lane, table in EVICTION_ORDER}, Lane.DEVICE: "devices"}


@dataclass(slots=True)
class _Write:
    """Statements that must commit together, and the future its caller awaits."""

    statements: list[Statement]
    rows: int
    future: asyncio.Future[None]
    files: list[tuple[Path, bytes]] = field(default_factory=list)
    telemetry: bool = False  # only readings: may be paused (dropped and counted) while the disk is full


@dataclass(frozen=True, slots=True)
class LaneBacklog:
    lane: Lane
    pending: int
    oldest_id: str | None
    oldest_age_s: float | None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A record waiting for upload, already in its upload (JSON-ready) form.

    ``attachments`` holds the evidence pictures its payload references by id (``codec.evidence_ref``),
    which the uplink sends once before the record.
    """

    id: str
    payload: dict[str, Any]
    attachments: dict[str, bytes] = field(default_factory=dict)


class Store:
    """Async context manager around the SQLite file. One per process."""

    def __init__(
        self,
        path: Path,
        *,
        evidence_dir: Path | None = None,
        quota_bytes: int = 1 << 30,
        retention_days: float = 90.0,
        batch_max_records: int = 2000,
        batch_max_delay_ms: float = 20.0,
        clock: Clock | None = None,
        maintenance_interval_s: float = 10.0,
        min_free_bytes: int = 64 << 20,
        reserve_bytes: int = 8 << 20,
    ) -> None:
        self.path = Path(path)
        self.evidence_dir = Path(evidence_dir) if evidence_dir else self.path.parent / "evidence"
        self.quota_bytes = quota_bytes
        self.retention_days = retention_days
        self.batch_max_records = batch_max_records
        self.batch_max_delay = batch_max_delay_ms / 1000
        self.clock = clock or SystemClock()
        self.maintenance_interval_s = maintenance_interval_s
        self.min_free_bytes = min_free_bytes
        self.reserve = Reserve(self.path.with_name(self.path.name + ".reserve"), reserve_bytes)
        self.disk = DiskState()
        self.disk_changed = asyncio.Event()  # set on every entry into / exit from disk-full mode
        self._writer_db: WriterConnection | None = None
        self._reader_db: aiosqlite.Connection | None = None
        self._queue: asyncio.Queue[_Write | None] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self._maintenance_task: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0
        self.rows_written = 0

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def from_config(cls, cfg: Any, clock: Clock | None = None) -> Store:
        return cls(
            cfg.path,
            evidence_dir=cfg.evidence_dir,
            quota_bytes=int(cfg.quota_mb * 1024 * 1024),
            retention_days=cfg.retention_days,
            batch_max_records=cfg.batch_max_records,
            batch_max_delay_ms=cfg.batch_max_delay_ms,
            clock=clock,
            maintenance_interval_s=cfg.maintenance_interval_s,
            min_free_bytes=int(cfg.min_free_mb * 1024 * 1024),
            reserve_bytes=int(cfg.reserve_mb * 1024 * 1024),
        )

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        for folder, what in ((self.path.parent, "store folder"), (self.evidence_dir, "evidence folder")):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # one line naming the folder, not a traceback (issue 10, defect 8)
                raise StoreError(f"cannot create the {what} {folder}: {exc.strerror}") from exc
        try:
            await self._connect()
        except sqlite3.DatabaseError as exc:
            await self._close_connections()
            if not (is_disk_full(exc) and self.reserve.release()):
                raise StoreError(f"cannot open store {self.path}: {exc}") from exc
            try:  # the reserve gave SQLite room for WAL recovery and migrations
                await self._connect()
            except sqlite3.DatabaseError as again:
                await self._close_connections()
                raise StoreError(f"cannot open store {self.path}: {again}") from again
        self._closing = False
        self._writer_task = asyncio.create_task(self._writer_loop(), name="store-writer")
        # Before any component writes (indicator catch-up, panel roll-ups): make room first.
        try:
            await self.maintain()
        except StoreError as exc:
            log.error("store: start-up maintenance could not make room: %s", exc)
        if self.maintenance_interval_s > 0:
            self._maintenance_task = asyncio.create_task(self._maintenance_loop(), name="store-maintenance")

    async def _connect(self) -> None:
        self._writer_db = WriterConnection(self.path)
        await self._writer_db.open()
        await self._writer_db.run(_migrate)
        self._reader_db = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in PRAGMAS:
            await self._reader_db.execute(pragma)

    async def close(self) -> None:
        """Flush every queued write, then close. Safe to call twice."""
        if self._writer_task is None:
            return
        self._closing = True
        await cancel_and_wait(self._maintenance_task)
        await self._queue.put(None)  # sentinel: writer drains everything before it, then exits
        await self._writer_task
        self._writer_task = None
        await self._close_connections()

    async def _close_connections(self) -> None:
        reader, writer = self._reader_db, self._writer_db
        self._reader_db = self._writer_db = None
        if reader is not None:
            await reader.close()
        if writer is not None:
            await writer.close()

    async def migrate_component(self, component: str, scripts: Sequence[str]) -> None:
        """Apply a stage's own schema scripts (append-only list), tracked per component."""
        db = self._writer_db
        assert db is not None, "store is not open"
        row = await db.fetchone("SELECT version FROM component_schema WHERE component=?", (component,))
        version = row[0] if row else 0
        for number, script in enumerate(scripts[version:], start=version + 1):
            # Serialise with the group-commit writer: run as one write item.
            statements = [(stmt, [()]) for stmt in _split_sql(script)]
            statements.append((
                "INSERT INTO component_schema(component, version) VALUES (?, ?) "
                "ON CONFLICT(component) DO UPDATE SET version=excluded.version",
                [(component, number)],
            ))
            await self._submit(self._new_write(statements, 1))
            log.info("store: %s schema at version %d", component, number)

    # ------------------------------------------------------------------ writer
    async def _submit(self, write: _Write) -> None:
        if self._writer_task is None or self._closing:
            raise StoreError("store is closed")
        await self._queue.put(write)
        await write.future

    def _new_write(self, statements: list[Statement], rows: int,
                   files: list[tuple[Path, bytes]] | None = None) -> _Write:
        return _Write(statements, rows, asyncio.get_running_loop().create_future(), files or [])

    async def _writer_loop(self) -> None:
        """Group commit: gather writes for up to ``batch_max_delay``, commit once, wake every caller."""
        assert self._writer_db is not None
        stop = False
        while not stop:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            rows = first.rows
            deadline = asyncio.get_running_loop().time() + self.batch_max_delay
            while rows < self.batch_max_records:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    timeout = deadline - asyncio.get_running_loop().time()
                    if timeout <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), timeout)
                    except TimeoutError:
                        break
                if item is None:
                    stop = True
                    break
                batch.append(item)
                rows += item.rows
            await self._commit(batch)
        # Drain anything that raced in behind the sentinel.
        leftovers = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                leftovers.append(item)
        if leftovers:
            await self._commit(leftovers)

    async def _commit(self, batch: list[_Write]) -> None:
        if self.disk.full:
            batch = self._pause_telemetry(batch)
            if not batch:
                return
        try:
            await self._transaction(batch)
        except Exception as exc:
            if is_disk_full(exc):
                await self._on_disk_full(batch, exc)
                return
            await self._commit_failed(batch, exc)
            return
        self._committed(batch)

    async def _transaction(self, batch: list[_Write]) -> None:
        db = self._writer_db
        assert db is not None
        files = [f for w in batch for f in w.files]
        if files:
            await asyncio.to_thread(_write_files_durably, files)
        await db.transaction([statement for write in batch for statement in write.statements])

    def _committed(self, batch: list[_Write]) -> None:
        self.commits += 1
        for write in batch:
            self.rows_written += write.rows
            if not write.future.done():
                write.future.set_result(None)

    def _pause_telemetry(self, batch: list[_Write]) -> list[_Write]:
        """Disk-full mode: readings are counted and dropped here; everything else goes on."""
        kept = []
        for write in batch:
            if write.telemetry:
                self.disk.telemetry_paused += write.rows
                if not write.future.done():
                    write.future.set_result(None)
            else:
                kept.append(write)
        return kept

    async def _on_disk_full(self, batch: list[_Write], exc: BaseException) -> None:
        """SQLITE_FULL / ENOSPC: give back the reserve, checkpoint, pause telemetry, retry the rest."""
        if self.disk.enter(self.clock.now(), f"{type(exc).__name__}: {exc}"):
            self.disk_changed.set()
        self.reserve.release()
        await self._checkpoint_quietly()
        batch = self._pause_telemetry(batch)
        for attempt in range(2):
            if not batch:
                return
            try:
                await self._transaction(batch)
            except Exception as again:
                if not is_disk_full(again) or attempt == 1:
                    await self._commit_failed(batch, again)
                    return
                # Still no room: the oldest telemetry makes way for alarm steps and events.
                await self._evict_on_writer(Lane.TELEMETRY, "readings", 5000)
                await self._checkpoint_quietly()
                continue
            self._committed(batch)
            return

    async def _commit_failed(self, batch: list[_Write], exc: BaseException) -> None:
        """A failed batch may hold one bad write: retry each alone so the good ones are not lost."""
        if len(batch) > 1:
            for write in batch:
                await self._commit([write])
            return
        error = StoreError(f"store write failed: {exc}")
        error.__cause__ = exc
        for write in batch:
            if not write.future.done():
                write.future.set_exception(error)

    # ------------------------------------------------------------------ appends
    async def append_readings(self, readings: Sequence[Reading]) -> list[str]:
        """Store readings; returns their new ids once committed."""
        if not readings:
            return []
        ids = new_ids(len(readings))
        rows = codec.reading_rows(readings, ids)
        if self.disk.full:  # paused: counted, not queued (the rules still see the readings)
            self.disk.telemetry_paused += len(rows)
            return []
        write = self._new_write([(_INSERT_READING, rows)], len(rows))
        write.telemetry = True
        await self._submit(write)
        return ids

    async def append_events(self, events: Sequence[Event]) -> list[str]:
        if not events:
            return []
        ids = new_ids(len(events))
        rows, files = [], []
        for event, rid in zip(events, ids, strict=True):
            path = self._evidence_path(rid) if event.evidence else None
            if path is not None and event.evidence is not None:
                files.append((path, event.evidence))
            rows.append(codec.event_row(event, rid, path.name if path else None))
        await self._submit(self._new_write([(_INSERT_EVENT, rows)], len(rows), files))
        return ids

    async def append_alarm_records(self, records: Sequence[AlarmRecord]) -> list[str]:
        """Store alarm steps and update each alarm's current state, in one transaction."""
        if not records:
            return []
        ids = new_ids(len(records))
        statements: list[Statement] = []
        files = []
        for record, rid in zip(records, ids, strict=True):
            path = self._evidence_path(rid) if record.evidence else None
            if path is not None and record.evidence is not None:
                files.append((path, record.evidence))
            statements.append((_INSERT_ALARM_LOG, [codec.alarm_row(record, rid, path.name if path else None)]))
            statements.append(_alarm_state_statement(record, path.name if path else None))
        await self._submit(self._new_write(statements, len(records), files))
        return ids

    async def append_indicators(self, records: Sequence[IndicatorRecord]) -> list[str]:
        if not records:
            return []
        ids = new_ids(len(records))
        rows = [codec.indicator_row(r, i) for r, i in zip(records, ids, strict=True)]
        await self._submit(self._new_write([(_INSERT_INDICATOR, rows)], len(rows)))
        return ids

    async def append_devices(self, records: Sequence[DeviceRecord]) -> list[str]:
        """New versions of inventory entries (``edge.inventory`` decides when there is one)."""
        if not records:
            return []
        ids = new_ids(len(records))
        rows = [codec.device_row(r, i) for r, i in zip(records, ids, strict=True)]
        await self._submit(self._new_write([("INSERT INTO devices VALUES (?,?,?,?,?)", rows)], len(rows)))
        return ids

    async def latest_devices(self) -> dict[str, dict[str, Any]]:
        """The newest inventory payload of every device ever listed (removed ones included)."""
        rows = await self.read("SELECT d.payload FROM devices d JOIN (SELECT device_id, max(version) AS v FROM devices"
                               " GROUP BY device_id) m ON d.device_id = m.device_id AND d.version = m.v")
        out = {}
        for (payload,) in rows:
            data = codec.json.loads(payload)
            out[data["device_id"]] = data
        return out

    async def execute_write(self, sql: str, params: Sequence[tuple] = ((),)) -> None:
        """Run one write statement through the group-commit writer (for stage-owned tables)."""
        await self._submit(self._new_write([(sql, list(params))], len(params)))

    def _evidence_path(self, record_id: str) -> Path:
        return self.evidence_dir / f"{record_id}.jpg"

    def evidence_file(self, name: str) -> Path | None:
        """Resolve an evidence file name safely: no path separators, must exist inside evidence_dir."""
        if not name or "/" in name or "\\" in name or name.startswith(".") or not name.endswith(".jpg"):
            return None
        path = (self.evidence_dir / name).resolve()
        if path.parent != self.evidence_dir.resolve() or not path.is_file():
            return None
        return path

    # ------------------------------------------------------------------ reads
    async def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run a read-only query on the reader connection (WAL lets it run beside the writer)."""
        assert self._reader_db is not None, "store is not open"
        async with self._reader_db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def read_one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        rows = await self.read(sql, params)
        return rows[0] if rows else None

    async def open_alarms(self) -> list[OpenAlarm]:
        """The open alarms, oldest first (what the rule engines restore their open set from)."""
        rows = await self.read(
            "SELECT alarm_id, code, device_id, severity, state, raised_us, message, data FROM alarms"
            " WHERE is_open=1 ORDER BY raised_us"
        )
        return [
            OpenAlarm(alarm_id, code, device_id, Severity(severity), AlarmState(state), from_us(raised_us),
                      message, codec.json.loads(data))
            for alarm_id, code, device_id, severity, state, raised_us, message, data in rows
        ]

    async def counter(self, name: str) -> int:
        row = await self.read_one("SELECT value FROM counters WHERE name=?", (name,))
        return int(row[0]) if row else 0

    async def counters(self) -> dict[str, int]:
        return {name: int(value) for name, value in await self.read("SELECT name, value FROM counters")}

    async def count(self, table: str) -> int:
        if table not in {*LANE_TABLES.values(), "alarms", "dead_letter"}:
            raise ValueError(f"unknown table {table!r}")
        row = await self.read_one(f"SELECT count(*) FROM {table}")  # noqa: S608 - table is whitelisted
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ outbox
    async def cursor(self, lane: Lane) -> str:
        row = await self.read_one("SELECT last_id FROM outbox_cursor WHERE lane=?", (str(lane),))
        return row[0] if row else ""

    async def pending(self, lane: Lane, after_id: str, limit: int) -> list[OutboxRow]:
        """The next ``limit`` records of ``lane`` after ``after_id``, oldest first, as upload payloads."""
        sql = f"{codec.LANE_QUERIES[lane]} WHERE id > ? ORDER BY id LIMIT ?"
        rows = await self.read(sql, (after_id, limit))
        if lane is Lane.TELEMETRY:
            payload = codec.telemetry_payload
            return [OutboxRow(r[0], payload(r)) for r in rows]
        if lane is Lane.INDICATOR or lane is Lane.DEVICE:
            return [OutboxRow(r[0], codec.json.loads(r[1])) for r in rows]
        make = codec.event_payload if lane is Lane.EVENT else codec.alarm_payload
        out = []
        for r in rows:
            evidence = await self._load_evidence(r[-1]) if r[-1] else None
            payload = make(r, evidence)
            out.append(OutboxRow(r[0], payload, {payload["evidence"]["id"]: evidence} if evidence else {}))
        return out

    async def _load_evidence(self, name: str) -> bytes | None:
        path = self.evidence_file(name)
        if path is None:
            return None
        return await asyncio.to_thread(path.read_bytes)

    async def ack(self, lane: Lane, last_id: str) -> None:
        """Durably record that the platform has everything in ``lane`` up to and including ``last_id``."""
        await self._submit(self._new_write([(
            "INSERT INTO outbox_cursor(lane, last_id, updated_us) VALUES (?,?,?) "
            "ON CONFLICT(lane) DO UPDATE SET last_id=excluded.last_id, updated_us=excluded.updated_us "
            "WHERE excluded.last_id > outbox_cursor.last_id",
            [(str(lane), last_id, to_us(self.clock.now()))],
        )], 1))

    async def dead_letter(self, lane: Lane, rejected: Iterable[tuple[str, dict[str, Any], str | None, str]]) -> None:
        """Move rejected records aside: (record_id, payload, platform code, platform message)."""
        items = list(rejected)
        if not items:
            return
        ids = new_ids(len(items))
        now = to_us(self.clock.now())
        rows = [(i, str(lane), rid, codec.dumps(payload), code, message, now)
                for i, (rid, payload, code, message) in zip(ids, items, strict=True)]
        await self._submit(self._new_write([
            ("INSERT INTO dead_letter VALUES (?,?,?,?,?,?,?)", rows),
            _counter_add("uplink.dead_letters", len(rows)),
        ], len(rows)))

    async def has_pending(self, lane: Lane) -> bool:
        """Is anything in ``lane`` not yet acknowledged? (Cheap: one index probe, unlike ``backlog``.)"""
        table = LANE_TABLES[lane]
        row = await self.read_one(f"SELECT 1 FROM {table} WHERE id > ? LIMIT 1", (await self.cursor(lane),))  # noqa: S608
        return row is not None

    async def backlog(self) -> list[LaneBacklog]:
        """Pending records and the oldest pending age per lane (for the panel and metrics)."""
        out = []
        now_us = to_us(self.clock.now())
        for lane in LANE_PRIORITY:
            table = LANE_TABLES[lane]
            cursor = await self.cursor(lane)
            row = await self.read_one(f"SELECT count(*), min(id) FROM {table} WHERE id > ?", (cursor,))  # noqa: S608
            pending, oldest = (row or (0, None))
            age = None
            if oldest:
                ts_col = "period_end_us" if lane is Lane.INDICATOR else "ts_us"
                ts = await self.read_one(f"SELECT {ts_col} FROM {table} WHERE id=?", (oldest,))  # noqa: S608
                age = max(0.0, (now_us - ts[0]) / 1e6) if ts else None
            out.append(LaneBacklog(lane, int(pending), oldest, age))
        return out

    # ------------------------------------------------------------------ quota
    async def used_bytes(self) -> int:
        row = await self.read_one(
            "SELECT (SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM pragma_freelist_count()),"
            " (SELECT page_size FROM pragma_page_size())"
        )
        pages, size = row if row else (0, 4096)
        wal = self.path.with_name(self.path.name + "-wal")
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        evidence = await asyncio.to_thread(_dir_bytes, self.evidence_dir)
        return int(pages) * int(size) + wal_bytes + evidence

    async def allocated_bytes(self) -> int:
        """What the store's files take on disk now, free pages inside the database included."""
        def sizes() -> int:
            wal = self.path.with_name(self.path.name + "-wal")
            return _file_bytes(self.path) + _file_bytes(wal) + _dir_bytes(self.evidence_dir)

        return await asyncio.to_thread(sizes)

    async def enforce_quota(self, chunk: int = 5000) -> int:
        """Evict by priority until under quota. Returns the number of records evicted."""
        evicted_total = 0
        for lane, table in EVICTION_ORDER:
            while await self.used_bytes() > self.quota_bytes:
                evicted = await self._evict_oldest(lane, table, chunk)
                if not evicted:
                    break
                evicted_total += evicted
        if evicted_total == 0 and await self.used_bytes() > self.quota_bytes:
            raise StoreFull(f"store {self.path} is over its quota and nothing is left to evict")
        return evicted_total

    async def keep_free_space(self, chunk: int = 5000) -> bool:
        """Keep ``min_free_bytes`` free on the file system by evicting old telemetry (only telemetry).

        Deleted rows become free pages that new rows reuse, so the file stops growing. Returns
        False when the mark cannot be kept (no telemetry left to evict): the disk is full for us.
        """
        while True:
            free = await asyncio.to_thread(free_bytes, self.path.parent)
            if free >= self.min_free_bytes:
                return True
            limit = growth_limit(await self.allocated_bytes(), free, self.min_free_bytes)
            if await self.used_bytes() <= limit:
                return True
            if not await self._evict_oldest(Lane.TELEMETRY, "readings", chunk):
                return False

    async def maintain(self) -> None:
        """One maintenance pass: prune, keep free space and the quota, enter or leave disk-full mode."""
        await self.prune_uploaded()
        room = await self.keep_free_space()
        try:
            await self.enforce_quota()
        finally:
            await self._update_disk_state(room)

    async def _update_disk_state(self, room: bool) -> None:
        free = await asyncio.to_thread(free_bytes, self.path.parent)
        if not room or free < self.min_free_bytes:
            if self.disk.enter(self.clock.now(), f"{free} bytes free, below the {self.min_free_bytes}-byte mark"):
                self.disk_changed.set()
            self.reserve.release()
            return
        reserve_ok = await asyncio.to_thread(self.reserve.restore) if free >= self.min_free_bytes + self.reserve.size \
            else self.reserve.held
        if self.disk.full and reserve_ok:
            paused = self.disk.telemetry_paused
            self.disk.leave()
            self.disk_changed.set()
            await self._submit(self._new_write([_counter_add("store.telemetry_paused", paused)], 1))

    async def _evict_oldest(self, lane: Lane, table: str, chunk: int) -> int:
        """Evict the oldest ``chunk`` records of one lane (with their evidence files); returns how many."""
        rows = await self.read(f"SELECT id FROM {table} ORDER BY id LIMIT ?", (chunk,))  # noqa: S608 - fixed names
        if not rows:
            return 0
        first, last = rows[0][0], rows[-1][0]
        evidence = [] if table in ("readings", "indicators") else [
            r[0] for r in await self.read(
                f"SELECT evidence_path FROM {table} WHERE id BETWEEN ? AND ? AND evidence_path IS NOT NULL",  # noqa: S608
                (first, last))
        ]
        await self._submit(self._new_write(self._eviction_statements(lane, table, first, last, len(rows)), len(rows)))
        log.warning("store: evicted %d %s records (%s..%s)", len(rows), lane.value, first, last)
        for name in evidence:
            path = self.evidence_file(name)
            if path:
                path.unlink(missing_ok=True)
        # Freed pages are reused; checkpoint so the WAL does not keep growing under pressure.
        await self._checkpoint()
        return len(rows)

    async def _evict_on_writer(self, lane: Lane, table: str, chunk: int) -> None:
        """Eviction from inside the writer loop (no queue hand-over): the disk-full emergency path."""
        db = self._writer_db
        assert db is not None
        rows = await db.run(lambda conn: conn.execute(
            f"SELECT min(id), max(id), count(*) FROM (SELECT id FROM {table} ORDER BY id LIMIT ?)",  # noqa: S608
            (chunk,)).fetchone())
        if not rows or not rows[2]:
            return
        first, last, count = rows
        try:
            await db.transaction(self._eviction_statements(lane, table, first, last, count))
        except sqlite3.Error as exc:
            log.error("store: emergency eviction failed: %s", exc)
            return
        log.warning("store: disk full: evicted %d oldest %s records to keep alarms and events", count, lane.value)

    def _eviction_statements(self, lane: Lane, table: str, first: str, last: str, count: int) -> list[Statement]:
        event = Event(
            code="store.eviction",
            ts=self.clock.now(),
            severity=Severity.WARNING,
            data={"lane": lane.value, "count": count, "first_id": first, "last_id": last},
            **say("store.eviction", count=count, lane=lane.value),
        )
        (eid,) = new_ids(1)
        return [
            (f"DELETE FROM {table} WHERE id BETWEEN ? AND ?", [(first, last)]),  # noqa: S608
            _counter_add(f"store.evicted.{lane.value}", count),
            _counter_add("store.evictions", 1),
            (_INSERT_EVENT, [codec.event_row(event, eid, None)]),
        ]

    async def _checkpoint(self) -> None:
        assert self._writer_db is not None
        await self._writer_db.run(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())

    async def _checkpoint_quietly(self) -> None:
        try:
            await self._checkpoint()
        except sqlite3.Error as exc:
            log.warning("store: WAL checkpoint failed: %s", exc)

    async def prune_uploaded(self) -> int:
        """Delete telemetry that is both uploaded and older than ``retention_days``; returns the count.

        Unlike quota eviction this loses nothing the platform lacks, so it is routine, not an event.
        """
        cutoff = self.clock.now().timestamp() - self.retention_days * 86400
        bound = min(ulid_floor(int(cutoff * 1000)), await self.cursor(Lane.TELEMETRY))
        if not bound:
            return 0
        row = await self.read_one("SELECT count(*) FROM readings WHERE id <= ?", (bound,))
        count = int(row[0]) if row else 0
        if count:
            await self._submit(self._new_write([
                ("DELETE FROM readings WHERE id <= ?", [(bound,)]),
                _counter_add("store.pruned.telemetry", count),
            ], count))
        return count

    async def _maintenance_loop(self) -> None:
        while True:
            await asyncio.sleep(self.maintenance_interval_s)
            try:
                await self.maintain()
            except StoreFull as exc:
                log.error("%s", exc)
            except Exception:
                log.exception("store maintenance failed")

    async def integrity_check(self) -> str:
        row = await self.read_one("PRAGMA integrity_check")
        return str(row[0]) if row else "no answer"


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring the store's own tables to the newest schema (runs on the writer thread)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")
        log.info("store migrated to schema version %d", number)


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (complete per sqlite3.complete_statement)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


def _counter_add(name: str, amount: int) -> tuple[str, Sequence[tuple]]:
    return (
        "INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
        [(name, amount)],
    )


def _alarm_state_statement(record: AlarmRecord, evidence: str | None) -> tuple[str, Sequence[tuple]]:
    """The ``alarms`` row update that one alarm step implies."""
    ts = to_us(record.ts)
    state = record.state
    if state is AlarmState.RAISED:
        return (
            "INSERT INTO alarms(alarm_id, code, device_id, severity, state, is_open, message, data, evidence_path,"
            " raised_us, updated_us) VALUES (?,?,?,?,?,1,?,?,?,?,?) ON CONFLICT(alarm_id) DO NOTHING",
            [(record.alarm_id, record.code, record.device_id, str(record.severity), str(state), record.message,
              codec.dumps(record.data), evidence, ts, ts)],
        )
    if state is AlarmState.ACKNOWLEDGED:
        return ("UPDATE alarms SET state=CASE WHEN is_open=1 THEN ? ELSE state END, acked_us=?, acked_by=?,"
                " updated_us=? WHERE alarm_id=?", [(str(state), ts, record.actor, ts, record.alarm_id)])
    if state is AlarmState.ESCALATED:
        return ("UPDATE alarms SET escalated_us=?, updated_us=?, state=CASE WHEN state='raised' THEN ? ELSE state END"
                " WHERE alarm_id=?", [(ts, ts, str(state), record.alarm_id)])
    if state is AlarmState.RESOLVED:
        return ("UPDATE alarms SET state=?, is_open=0, resolved_us=?, resolved_by=?, note=?, updated_us=?"
                " WHERE alarm_id=?", [(str(state), ts, record.actor, record.note, ts, record.alarm_id)])
    return ("UPDATE alarms SET state=CASE WHEN resolved_us IS NULL THEN ? ELSE state END, is_open=0, cleared_us=?,"
            " updated_us=? WHERE alarm_id=?", [(str(state), ts, ts, record.alarm_id)])


def _write_files_durably(files: list[tuple[Path, bytes]]) -> None:
    """Write evidence files and fsync them *before* the rows that point at them commit."""
    for path, data in files:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    if files:
        fd = os.open(files[0][0].parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _dir_bytes(path: Path) -> int:
    try:
        return sum(e.stat().st_size for e in os.scandir(path) if e.is_file())
    except FileNotFoundError:
        return 0


def _file_bytes(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
