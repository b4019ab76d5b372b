"""The store's writer: open and close the SQLite file, group commit, and the ``append_*`` of every lane.

Durability choice (the reason the store exists):
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

Evidence pictures are written and fsynced (``_write_files_durably``) in the same hand-over as the
rows that name them, before their transaction commits: a committed row never points at a file
that a power cut lost.

Disk full (``edge.store.space``): on SQLITE_FULL / ENOSPC the writer gives back its reserve file,
checkpoints, and enters disk-full mode: telemetry is paused and counted (the rules still see it),
alarm steps, events and indicators are still kept (if there is still no room, the oldest telemetry
is evicted on the writer's own thread to make way), and ``disk_changed`` is set so the
``store.disk_full`` alarm is raised (``edge.store.health``). Maintenance leaves the mode.

The writer also opens the reader connection (WAL lets it read beside the writer) and serves the
store's own parts (outbox, maintenance, queries, table handles) through ``read``; nothing outside
``edge.store`` holds a ``StoreWriter``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

from edge.clock import Clock
from edge.errors import StoreError
from edge.ids import new_ids
from edge.records import AlarmRecord, DeviceRecord, Event, IndicatorRecord, Lane, Reading
from edge.store import codec
from edge.store.connection import PRAGMAS, SqlRow, Statement, WriterConnection
from edge.store.schema import MIGRATIONS
from edge.store.space import DiskState, Reserve, is_disk_full
from edge.store.statements import (
    INSERT_ALARM_LOG,
    INSERT_DEVICE,
    INSERT_EVENT,
    INSERT_INDICATOR,
    INSERT_POLL,
    INSERT_SHAPE,
    alarm_state_statement,
    component_version,
    eviction_statements,
    split_sql,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_SHAPES_REMEMBERED = 10_000  # poll shapes the writer keeps (inserting a known one again is harmless)


@dataclass(slots=True)
class _Write:
    """Statements that must commit together, and the future its caller awaits."""

    statements: list[Statement]
    rows: int
    future: asyncio.Future[bool]  # True once committed; False when dropped (telemetry paused on a full disk)
    files: list[tuple[Path, bytes]] = field(default_factory=list)
    telemetry: bool = False  # only readings: may be paused (dropped and counted) while the disk is full


class StoreWriter:
    """The one write path into the SQLite file (group commit), and the reader connection beside it."""

    def __init__(self, path: Path, evidence_dir: Path, *, clock: Clock, reserve: Reserve,
                 batch_max_records: int, batch_max_delay_ms: float) -> None:
        self.path = path
        self.evidence_dir = evidence_dir
        self.clock = clock
        self.reserve = reserve
        self.batch_max_records = batch_max_records
        self.batch_max_delay = batch_max_delay_ms / 1000
        self.disk = DiskState()
        self.disk_changed = asyncio.Event()  # set on every entry into / exit from disk-full mode
        self._writer_db: WriterConnection | None = None
        self._reader_db: aiosqlite.Connection | None = None
        self._queue: asyncio.Queue[_Write | None] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0
        self.rows_written = 0
        self._shapes: dict[tuple[tuple[str, str], ...], tuple[int, str]] = {}  # poll shapes seen (codec.poll_rows)
        self._shapes_stored: set[int] = set()  # shape ids known to be in poll_shapes

    # ------------------------------------------------------------------ lifecycle
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

    async def _connect(self) -> None:
        self._writer_db = WriterConnection(self.path)
        await self._writer_db.open()
        await self._writer_db.run(_migrate)
        self._reader_db = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in PRAGMAS:
            await self._reader_db.execute(pragma)

    @property
    def is_open(self) -> bool:
        return self._writer_task is not None

    async def close(self) -> None:
        """Flush every queued write, then close. Safe to call twice."""
        if self._writer_task is None:
            return
        self._closing = True
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
            statements: list[Statement] = [(stmt, [()]) for stmt in split_sql(script)]
            statements.append(component_version(component, number))
            await self.submit(statements, 1)
            log.info("store: %s schema at version %d", component, number)

    # ------------------------------------------------------------------ the store's own access
    async def submit(self, statements: list[Statement], rows: int, files: list[tuple[Path, bytes]] | None = None,
                     *, telemetry: bool = False) -> bool:
        """Queue statements that commit together; returns once they are on disk (raises StoreError if not).

        True when committed; False only for ``telemetry`` writes dropped because the disk filled up
        after they were queued (paused telemetry is counted, not an error).
        """
        write = _Write(statements, rows, asyncio.get_running_loop().create_future(), files or [], telemetry)
        if self._writer_task is None or self._closing:
            raise StoreError("store is closed")
        await self._queue.put(write)
        return await write.future

    async def read(self, sql: str, params: Sequence[Any] = ()) -> list[SqlRow]:
        """Run a read-only query on the reader connection (WAL lets it run beside the writer)."""
        assert self._reader_db is not None, "store is not open"
        # One call on the reader's thread (execute, fetch, close), not three: a read cancelled while the
        # store closes (the service watchdog's probe) has no cursor close left to await on a stopped
        # thread, which once hung a test's clean-up for 300 s; and one round trip costs less.
        # aiosqlite annotates rows as sqlite3.Row; the reader sets no row_factory, so rows are tuples.
        return cast(list[SqlRow], list(await self._reader_db.execute_fetchall(sql, params)))

    async def read_one(self, sql: str, params: Sequence[Any] = ()) -> SqlRow | None:
        rows = await self.read(sql, params)
        return rows[0] if rows else None

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the writer thread, outside any queued batch (checkpoints, eviction)."""
        assert self._writer_db is not None, "store is not open"
        return await self._writer_db.run(fn)

    async def checkpoint(self) -> None:
        await self.run(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())

    async def checkpoint_quietly(self) -> None:
        try:
            await self.checkpoint()
        except sqlite3.Error as exc:
            log.warning("store: WAL checkpoint failed: %s", exc)

    # ------------------------------------------------------------------ group commit
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
                        async with asyncio.timeout(timeout):
                            item = await self._queue.get()
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
                write.future.set_result(True)

    def _pause_telemetry(self, batch: list[_Write]) -> list[_Write]:
        """Disk-full mode: readings are counted and dropped here; everything else goes on."""
        kept = []
        for write in batch:
            if write.telemetry:
                self.disk.telemetry_paused += write.rows
                if not write.future.done():
                    write.future.set_result(False)  # dropped, not stored
            else:
                kept.append(write)
        return kept

    async def _on_disk_full(self, batch: list[_Write], exc: BaseException) -> None:
        """SQLITE_FULL / ENOSPC: give back the reserve, checkpoint, pause telemetry, retry the rest."""
        if self.disk.enter(self.clock.now(), f"{type(exc).__name__}: {exc}"):
            self.disk_changed.set()
        self.reserve.release()
        await self.checkpoint_quietly()
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
                await self._evict_on_writer(Lane.TELEMETRY, "polls", 500)
                await self.checkpoint_quietly()
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
            await db.transaction(eviction_statements(lane, table, first, last, count, self.clock.now()))
        except sqlite3.Error as exc:
            log.error("store: emergency eviction failed: %s", exc)
            return
        log.warning("store: disk full: evicted %d oldest %s records to keep alarms and events", count, lane.value)

    # ------------------------------------------------------------------ appends
    async def append_readings(self, readings: Sequence[Reading]) -> list[str]:
        """Store readings, one ``polls`` row per device poll among them; returns the polls' ids once committed."""
        if not readings:
            return []
        if len(self._shapes) > MAX_SHAPES_REMEMBERED:
            self._shapes.clear()
            self._shapes_stored.clear()
        rows, shapes = codec.poll_rows(readings, new_ids, self._shapes)
        if self.disk.full:  # paused: counted, not queued (the rules still see the readings)
            self.disk.telemetry_paused += len(readings)
            return []
        new_shapes = [shape for shape in shapes if shape[0] not in self._shapes_stored]
        statements: list[Statement] = [(INSERT_SHAPE, new_shapes)] if new_shapes else []
        statements.append((INSERT_POLL, rows))
        if not await self.submit(statements, len(readings), telemetry=True):
            return []  # dropped on a full disk after it was queued: counted as paused, its new shapes not stored
        self._shapes_stored.update(shape for shape, _names in new_shapes)  # committed with their polls
        return [row[0] for row in rows]

    async def append_events(self, events: Sequence[Event]) -> list[str]:
        if not events:
            return []
        ids = new_ids(len(events))
        rows: list[SqlRow] = []
        files: list[tuple[Path, bytes]] = []
        for event, rid in zip(events, ids, strict=True):
            name = self._evidence_files(rid, event.evidence, event.evidence_local, files)
            rows.append(codec.event_row(event, rid, name))
        await self.submit([(INSERT_EVENT, rows)], len(rows), files)
        return ids

    async def append_alarm_records(self, records: Sequence[AlarmRecord]) -> list[str]:
        """Store alarm steps and update each alarm's current state, in one transaction."""
        if not records:
            return []
        ids = new_ids(len(records))
        statements: list[Statement] = []
        files: list[tuple[Path, bytes]] = []
        for record, rid in zip(records, ids, strict=True):
            name = self._evidence_files(rid, record.evidence, record.evidence_local, files)
            statements.append((INSERT_ALARM_LOG, [codec.alarm_row(record, rid, name)]))
            statements.append(alarm_state_statement(record, name))
        await self.submit(statements, len(records), files)
        return ids

    async def append_indicators(self, records: Sequence[IndicatorRecord]) -> list[str]:
        if not records:
            return []
        ids = new_ids(len(records))
        rows = [codec.indicator_row(r, i) for r, i in zip(records, ids, strict=True)]
        await self.submit([(INSERT_INDICATOR, rows)], len(rows))
        return ids

    async def append_devices(self, records: Sequence[DeviceRecord]) -> list[str]:
        """New versions of inventory entries (``edge.inventory`` decides when there is one)."""
        if not records:
            return []
        ids = new_ids(len(records))
        rows = [codec.device_row(r, i) for r, i in zip(records, ids, strict=True)]
        await self.submit([(INSERT_DEVICE, rows)], len(rows))
        return ids

    # ------------------------------------------------------------------ evidence files
    def _evidence_files(self, record_id: str, upload: bytes | None, local: bytes | None,
                        files: list[tuple[Path, bytes]]) -> str | None:
        """Queue a record's evidence file(s) in ``files``; returns the name its row keeps (the panel's copy).

        Two files only when the panel's copy differs from the uploaded one (``codec.evidence_name``).
        """
        if not upload:
            return None
        files.append((self.evidence_dir / codec.evidence_name(record_id), upload))
        if not local or local == upload:
            return codec.evidence_name(record_id)
        files.append((self.evidence_dir / codec.evidence_name(record_id, local=True), local))
        return codec.evidence_name(record_id, local=True)

    def evidence_file(self, name: str) -> Path | None:
        """Resolve an evidence file name safely: no path separators, must exist inside evidence_dir."""
        if not name or "/" in name or "\\" in name or name.startswith(".") or not name.endswith(".jpg"):
            return None
        path = (self.evidence_dir / name).resolve()
        if path.parent != self.evidence_dir.resolve() or not path.is_file():
            return None
        return path


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring the store's own tables to the newest schema (runs on the writer thread)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        if isinstance(step, str):
            conn.executescript(f"BEGIN;\n{step}\nPRAGMA user_version={number};\nCOMMIT;")
        else:
            step(conn, number)  # its own transactions; the version goes in with its last one
        log.info("store migrated to schema version %d", number)


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
