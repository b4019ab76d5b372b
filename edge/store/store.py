"""The local store: one SQLite file in WAL mode, durable on acknowledgement. This module only composes it.

The store is four small parts, each with one job (read their docstrings for the reasoning):

    writer       ``edge.store.writer``       open, close, group commit, ``append_*``, disk-full mode
    outbox       ``edge.store.outbox``       per-lane pending records, the durable ack cursor, dead letters, backlog
    maintenance  ``edge.store.maintenance``  pruning, quota and free-space eviction, checkpoints
    queries      ``edge.store.queries``      named reads on the core tables (``Store.records``), and
                 ``edge.store.alarm_queries`` on ``alarms`` / ``alarm_log`` (``Store.alarms``)

and ``TableHandle`` (``edge.store.tables``) is the narrow database handle a component that owns
tables of its own (panel users and sessions, audit, live roll-ups, indicator series, normaliser
state, rule timers) gets from ``Store.tables``: its own tables only, writes through the same group
commit.

Why a facade: the daemon, the uplink, the panel and the tests hold one object whose lifetime is the
file's: ``open`` must start the writer before the first maintenance pass and ``close`` must stop
maintenance before the writer drains, and every part shares the same two connections. Handing four
objects to every caller would move that ordering into each of them. The facade adds no logic: each
method is a part's method (bound in ``__init__``), so a caller writes ``store.ack(...)`` or
``store.append_events(...)`` and a reader finds the code one hop away. What the facade deliberately
lacks is a raw-SQL method: nothing outside ``edge.store`` sends SQL to the core tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edge.clock import Clock, SystemClock
from edge.store.alarm_queries import AlarmQueries
from edge.store.maintenance import EVICTION_ORDER, Maintenance
from edge.store.outbox import LANE_TABLES, LaneBacklog, Outbox, OutboxRow
from edge.store.queries import CoreQueries
from edge.store.space import DiskState, Reserve
from edge.store.tables import TableHandle
from edge.store.writer import StoreWriter

if TYPE_CHECKING:
    from edge.config.store import StoreConfig

__all__ = ["EVICTION_ORDER", "LANE_TABLES", "LaneBacklog", "OutboxRow", "Store"]


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
        self.clock = clock or SystemClock()
        reserve = Reserve(self.path.with_name(self.path.name + ".reserve"), reserve_bytes)
        self._db = writer = StoreWriter(self.path, self.evidence_dir, clock=self.clock, reserve=reserve,
                                        batch_max_records=batch_max_records, batch_max_delay_ms=batch_max_delay_ms)
        self.outbox = outbox = Outbox(writer)
        self.maintenance = maintenance = Maintenance(
            writer, outbox, quota_bytes=quota_bytes, retention_days=retention_days, min_free_bytes=min_free_bytes,
            interval_s=maintenance_interval_s)
        self.alarms = AlarmQueries(writer)
        self.records = core = CoreQueries(writer)
        # writer
        self.append_readings = writer.append_readings
        self.append_events = writer.append_events
        self.append_alarm_records = writer.append_alarm_records
        self.append_indicators = writer.append_indicators
        self.append_devices = writer.append_devices
        self.evidence_file = writer.evidence_file
        # outbox
        self.cursor = outbox.cursor
        self.pending = outbox.pending
        self.ack = outbox.ack
        self.dead_letter = outbox.dead_letter
        self.has_pending = outbox.has_pending
        self.backlog = outbox.backlog
        # maintenance
        self.maintain = maintenance.maintain
        self.used_bytes = maintenance.used_bytes
        self.allocated_bytes = maintenance.allocated_bytes
        self.enforce_quota = maintenance.enforce_quota
        self.keep_free_space = maintenance.keep_free_space
        self.prune_uploaded = maintenance.prune_uploaded
        self.integrity_check = maintenance.integrity_check
        # named reads on the core tables
        self.open_alarms = core.open_alarms
        self.counter = core.counter
        self.counters = core.counters
        self.count = core.count
        self.latest_devices = core.latest_devices
        self.answers = core.answers

    @classmethod
    def from_config(cls, cfg: StoreConfig, clock: Clock | None = None) -> Store:
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

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Open (and migrate) the file, start the writer, then make room before any component writes."""
        await self._db.open()
        await self.maintenance.start()

    async def close(self) -> None:
        """Stop maintenance, flush every queued write, then close. Safe to call twice."""
        if not self._db.is_open:
            return
        await self.maintenance.stop()
        await self._db.close()

    def tables(self, owner: str, tables: Sequence[str]) -> TableHandle:
        """The narrow handle for a component that owns ``tables`` (and no others)."""
        return TableHandle(self._db, owner, tables)

    # ------------------------------------------------------------------ state the daemon and panel show
    @property
    def disk(self) -> DiskState:
        return self._db.disk

    @property
    def disk_changed(self) -> asyncio.Event:
        return self._db.disk_changed

    @property
    def reserve(self) -> Reserve:
        return self._db.reserve

    @property
    def commits(self) -> int:
        return self._db.commits

    @property
    def rows_written(self) -> int:
        return self._db.rows_written

    @property
    def quota_bytes(self) -> int:
        return self.maintenance.quota_bytes

    @quota_bytes.setter
    def quota_bytes(self, value: int) -> None:
        self.maintenance.quota_bytes = value

    @property
    def min_free_bytes(self) -> int:
        return self.maintenance.min_free_bytes

    @min_free_bytes.setter
    def min_free_bytes(self, value: int) -> None:
        self.maintenance.min_free_bytes = value
