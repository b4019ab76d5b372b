"""Store maintenance: pruning what is uploaded, the quota, the file system's free space, checkpoints.

Quota: ``enforce_quota`` evicts oldest telemetry first, then events, then indicators, and alarm
steps last; every eviction is recorded as a ``store.eviction`` event and counted in ``counters``.

Disk space (``edge.store.space``): beside the quota, the file system's real free space must stay
above ``min_free_bytes``; only telemetry is evicted for that. A pass runs once when the store opens,
before any other component writes, then every ``interval_s``. A pass that finds the mark cannot be
kept enters disk-full mode (``StoreWriter.disk``); one that finds space and the reserve back leaves
it, adds the paused readings to ``store.telemetry_paused`` and sets ``disk_changed``.

Pruning (``prune_uploaded``) deletes telemetry that is both acknowledged and older than
``retention_days``: it loses nothing the platform lacks, so it is routine, not an event. Evictions
checkpoint the WAL so it does not keep growing under pressure.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from edge.errors import StoreError, StoreFull
from edge.ids import ulid_floor
from edge.records import Lane
from edge.store import codec
from edge.store.outbox import Outbox
from edge.store.space import free_bytes, growth_limit
from edge.store.statements import counter_add, eviction_statements
from edge.store.writer import StoreWriter
from edge.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# Eviction order: what goes first when the disk quota is reached. Alarm steps (raised, disposal)
# go last: they are what the platform scores the estate's closed loop on.
EVICTION_ORDER: tuple[tuple[Lane, str], ...] = (
    (Lane.TELEMETRY, "polls"),
    (Lane.EVENT, "events"),
    (Lane.INDICATOR, "indicators"),
    (Lane.ALARM, "alarm_log"),
)


class Maintenance:
    """Quota, free space, pruning and the periodic pass that runs them."""

    def __init__(self, writer: StoreWriter, outbox: Outbox, *, quota_bytes: int, retention_days: float,
                 min_free_bytes: int, interval_s: float) -> None:
        self._db = writer
        self._outbox = outbox
        self.quota_bytes = quota_bytes
        self.retention_days = retention_days
        self.min_free_bytes = min_free_bytes
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """One pass now (before any component writes: indicator catch-up, panel roll-ups), then the loop."""
        try:
            await self.maintain()
        except StoreError as exc:
            log.error("store: start-up maintenance could not make room: %s", exc)
        if self.interval_s > 0:
            self._task = asyncio.create_task(self._loop(), name="store-maintenance")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.maintain()
            except StoreFull as exc:
                log.error("%s", exc)
            except Exception:
                log.exception("store maintenance failed")

    # ------------------------------------------------------------------ one pass
    async def maintain(self) -> None:
        """One maintenance pass: prune, keep free space and the quota, enter or leave disk-full mode."""
        await self.prune_uploaded()
        room = await self.keep_free_space()
        try:
            await self.enforce_quota()
        finally:
            await self._update_disk_state(room)

    async def used_bytes(self) -> int:
        """Live pages of the database, plus its WAL and the evidence folder (what the quota counts)."""
        row = await self._db.read_one(
            "SELECT (SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM pragma_freelist_count()),"
            " (SELECT page_size FROM pragma_page_size())"
        )
        pages, size = row if row else (0, 4096)
        wal = self._db.path.with_name(self._db.path.name + "-wal")
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        evidence = await asyncio.to_thread(_dir_bytes, self._db.evidence_dir)
        return int(pages) * int(size) + wal_bytes + evidence

    async def allocated_bytes(self) -> int:
        """What the store's files take on disk now, free pages inside the database included."""
        path, evidence_dir = self._db.path, self._db.evidence_dir

        def sizes() -> int:
            wal = path.with_name(path.name + "-wal")
            return _file_bytes(path) + _file_bytes(wal) + _dir_bytes(evidence_dir)

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
            raise StoreFull(f"store {self._db.path} is over its quota and nothing is left to evict")
        return evicted_total

    async def keep_free_space(self, chunk: int = 5000) -> bool:
        """Keep ``min_free_bytes`` free on the file system by evicting old telemetry (only telemetry).

        Deleted rows become free pages that new rows reuse, so the file stops growing. Returns
        False when the mark cannot be kept (no telemetry left to evict): the disk is full for us.
        """
        while True:
            free = await asyncio.to_thread(free_bytes, self._db.path.parent)
            if free >= self.min_free_bytes:
                return True
            limit = growth_limit(await self.allocated_bytes(), free, self.min_free_bytes)
            if await self.used_bytes() <= limit:
                return True
            if not await self._evict_oldest(Lane.TELEMETRY, "polls", chunk):
                return False

    async def _update_disk_state(self, room: bool) -> None:
        db = self._db
        free = await asyncio.to_thread(free_bytes, db.path.parent)
        if not room or free < self.min_free_bytes:
            if db.disk.enter(db.clock.now(), f"{free} bytes free, below the {self.min_free_bytes}-byte mark"):
                db.disk_changed.set()
            db.reserve.release()
            return
        reserve_ok = await asyncio.to_thread(db.reserve.restore) if free >= self.min_free_bytes + db.reserve.size \
            else db.reserve.held
        if db.disk.full and reserve_ok:
            paused = db.disk.telemetry_paused
            db.disk.leave()
            db.disk_changed.set()
            await db.submit([counter_add("store.telemetry_paused", paused)], 1)

    async def _evict_oldest(self, lane: Lane, table: str, chunk: int) -> int:
        """Evict the oldest ``chunk`` records of one lane (with their evidence files); returns how many."""
        db = self._db
        rows = await db.read(f"SELECT id FROM {table} ORDER BY id LIMIT ?", (chunk,))  # noqa: S608 - fixed names
        if not rows:
            return 0
        first, last = rows[0][0], rows[-1][0]
        evidence = [] if table in ("polls", "indicators") else [
            r[0] for r in await db.read(
                f"SELECT evidence_path FROM {table} WHERE id BETWEEN ? AND ? AND evidence_path IS NOT NULL",  # noqa: S608
                (first, last))
        ]
        await db.submit(eviction_statements(lane, table, first, last, len(rows), db.clock.now()), len(rows))
        log.warning("store: evicted %d %s records (%s..%s)", len(rows), lane.value, first, last)
        for name in (n for named in evidence for n in codec.evidence_file_names(named)):
            path = db.evidence_file(name)
            if path:
                path.unlink(missing_ok=True)
        # Freed pages are reused; checkpoint so the WAL does not keep growing under pressure.
        await db.checkpoint()
        return len(rows)

    async def prune_uploaded(self) -> int:
        """Delete telemetry that is both uploaded and older than ``retention_days``; returns the count.

        Unlike quota eviction this loses nothing the platform lacks, so it is routine, not an event.
        """
        cutoff = self._db.clock.now().timestamp() - self.retention_days * 86400
        bound = min(ulid_floor(int(cutoff * 1000)), await self._outbox.cursor(Lane.TELEMETRY))
        if not bound:
            return 0
        row = await self._db.read_one("SELECT count(*) FROM polls WHERE id <= ?", (bound,))
        count = int(row[0]) if row else 0
        if count:
            await self._db.submit([
                ("DELETE FROM polls WHERE id <= ?", [(bound,)]),
                counter_add("store.pruned.telemetry", count),
            ], count)
        return count

    async def integrity_check(self) -> str:
        row = await self._db.read_one("PRAGMA integrity_check")
        return str(row[0]) if row else "no answer"


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
