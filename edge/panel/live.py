"""Latest values, device online state and chart rollups, fed by the pipeline after each commit.

Why this exists: ``readings`` deliberately has no (device, point, ts) index (it would cut ingest by
about 4x), so the panel can not ask it for "the last 24 hours of device X". Instead this observer
(registered with ``Pipeline.observe_readings`` / ``observe_status``) keeps, in memory, the latest
value of every device/point and aggregates every reading into 5-minute and 1-hour buckets
(min, max, sum, count, last). Every ``flush_interval_s`` the accumulated *deltas* are merged into
``panel_rollup_5m`` / ``panel_rollup_1h`` with one upsert each (min of mins, sum of sums, ...), so
a crash loses at most one interval of chart data (never readings, which the store already holds).

Bounds: the rollup tables hold at most ``keep_5m`` (26 h) and ``keep_1h`` (8 d) of buckets per
point and are pruned by age; the in-memory deltas hold at most one entry per point and bucket
touched since the last flush. If flushing keeps failing (store broken) and deltas exceed
``max_pending`` entries, the oldest buckets are dropped and counted in ``dropped_buckets``: the
charts lose resolution, acquisition never waits on the panel.

Readings of BAD quality update the latest value (staff must see a faulty sensor) but are kept out
of the chart aggregates (a broken sensor's 0 would drag the average down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from edge.clock import Clock, to_us
from edge.panel.schema import PANEL_COMPONENT
from edge.records import DeviceStatus, Quality, Reading
from edge.store import Store
from edge.tasks import wait_event

log = logging.getLogger(__name__)

RESOLUTIONS: dict[str, tuple[int, str]] = {
    "5m": (300_000_000, "panel_rollup_5m"),
    "1h": (3_600_000_000, "panel_rollup_1h"),
}

_UPSERT_ROLLUP = (
    "INSERT INTO {table} VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(device_id, point, bucket_us) DO UPDATE SET"
    " vmin=min(vmin, excluded.vmin), vmax=max(vmax, excluded.vmax), vsum=vsum+excluded.vsum, n=n+excluded.n,"
    " vlast=CASE WHEN excluded.last_us >= last_us THEN excluded.vlast ELSE vlast END,"
    " last_us=max(last_us, excluded.last_us)"
)
_UPSERT_LATEST = (
    "INSERT INTO panel_latest VALUES (?,?,?,?,?,?) ON CONFLICT(device_id, point) DO UPDATE SET"
    " value=excluded.value, unit=excluded.unit, quality=excluded.quality, ts_us=excluded.ts_us"
    " WHERE excluded.ts_us >= panel_latest.ts_us"
)
_UPSERT_STATUS = (
    "INSERT INTO panel_device_status VALUES (?,?,?,?,?) ON CONFLICT(device_id) DO UPDATE SET"
    " online=excluded.online, ts_us=excluded.ts_us, since_us=excluded.since_us, error=excluded.error"
)


@dataclass(slots=True)
class LatestValue:
    value: float
    unit: str
    quality: Quality
    ts_us: int


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What the driver last said about a device. ``since_us``: when it last changed online/offline."""

    online: bool
    ts_us: int
    since_us: int
    error: str | None = None


@dataclass(slots=True)
class _Agg:
    vmin: float
    vmax: float
    vsum: float
    n: int
    vlast: float
    last_us: int

    @classmethod
    def of(cls, value: float, ts_us: int) -> _Agg:
        return cls(value, value, value, 1, value, ts_us)

    def add(self, value: float, ts_us: int) -> None:
        self.vmin = min(self.vmin, value)
        self.vmax = max(self.vmax, value)
        self.vsum += value
        self.n += 1
        if ts_us >= self.last_us:
            self.vlast, self.last_us = value, ts_us

    def merge(self, other: _Agg) -> None:
        self.vmin = min(self.vmin, other.vmin)
        self.vmax = max(self.vmax, other.vmax)
        self.vsum += other.vsum
        self.n += other.n
        if other.last_us >= self.last_us:
            self.vlast, self.last_us = other.vlast, other.last_us

    def copy(self) -> _Agg:
        return _Agg(self.vmin, self.vmax, self.vsum, self.n, self.vlast, self.last_us)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One chart bucket: ``start_us`` .. ``start_us + width``; values in the point's canonical unit."""

    start_us: int
    vmin: float
    vmax: float
    avg: float
    last: float
    n: int


# pending[resolution][(device_id, point)][bucket_us] -> aggregate of readings not yet written
_Pending = dict[str, dict[tuple[str, str], dict[int, _Agg]]]


def _empty() -> _Pending:
    return {res: {} for res in RESOLUTIONS}


class LiveValues:
    def __init__(self, store: Store, clock: Clock, *, flush_interval_s: float = 30.0,
                 keep_5m: timedelta = timedelta(hours=26), keep_1h: timedelta = timedelta(days=8),
                 max_pending: int = 500_000) -> None:
        self.db = store.tables(PANEL_COMPONENT, ("panel_latest", "panel_device_status", "panel_rollup_5m", "panel_rollup_1h"))
        self.clock = clock
        self.flush_interval_s = flush_interval_s
        self.keep_us = {"5m": int(keep_5m.total_seconds() * 1e6), "1h": int(keep_1h.total_seconds() * 1e6)}
        self.max_pending = max_pending
        self._latest: dict[str, dict[str, LatestValue]] = {}
        self._status: dict[str, DeviceState] = {}
        self._pending: _Pending = _empty()
        self._inflight: _Pending = _empty()
        self._pending_count = 0
        self._dirty_latest: set[tuple[str, str]] = set()
        self._dirty_status: set[str] = set()
        self._flush_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self.dropped_buckets = 0
        self.flushes = 0

    # ------------------------------------------------------------------ startup
    async def load(self) -> None:
        """Fill the in-memory view from the last flush (so values show right after a restart)."""
        # Readings may already have arrived (observers are registered before the panel starts):
        # stored values only fill gaps, they never replace newer ones.
        for device_id, point, value, unit, quality, ts_us in await self.db.read(
            "SELECT device_id, point, value, unit, quality, ts_us FROM panel_latest"
        ):
            points = self._latest.setdefault(device_id, {})
            current = points.get(point)
            if current is None or current.ts_us < ts_us:
                points[point] = LatestValue(value, unit, Quality(quality), ts_us)
        for device_id, online, ts_us, since_us, error in await self.db.read(
            "SELECT device_id, online, ts_us, since_us, error FROM panel_device_status"
        ):
            known = self._status.get(device_id)
            if known is None or known.ts_us < ts_us:
                self._status[device_id] = DeviceState(bool(online), ts_us, since_us, error)

    # ------------------------------------------------------------------ observers
    async def on_readings(self, readings: Sequence[Reading]) -> None:
        """Pipeline observer: called after the readings are committed. Pure memory work, no I/O."""
        latest, pending = self._latest, self._pending
        for r in readings:
            value = r.value
            if value is None or not math.isfinite(value):
                continue
            ts = to_us(r.ts)
            points = latest.get(r.device_id)
            if points is None:
                points = latest[r.device_id] = {}
            current = points.get(r.point)
            if current is None or ts >= current.ts_us:
                points[r.point] = LatestValue(value, r.unit, r.quality, ts)
                self._dirty_latest.add((r.device_id, r.point))
            if r.quality is Quality.BAD:
                continue
            key = (r.device_id, r.point)
            for res, (width, _table) in RESOLUTIONS.items():
                buckets = pending[res].get(key)
                if buckets is None:
                    buckets = pending[res][key] = {}
                start = ts - ts % width
                agg = buckets.get(start)
                if agg is None:
                    buckets[start] = _Agg.of(value, ts)
                    self._pending_count += 1
                else:
                    agg.add(value, ts)
        if self._pending_count >= self.max_pending // 2:
            self._wake.set()

    async def on_status(self, status: DeviceStatus) -> None:
        ts = to_us(status.ts)
        old = self._status.get(status.device_id)
        if old is not None and old.ts_us > ts:
            return
        since = old.since_us if old is not None and old.online == status.online else ts
        self._status[status.device_id] = DeviceState(status.online, ts, since, status.error)
        self._dirty_status.add(status.device_id)

    # ------------------------------------------------------------------ reads
    def latest(self, device_id: str) -> dict[str, LatestValue]:
        return dict(self._latest.get(device_id, {}))

    def last_seen_us(self, device_id: str) -> int | None:
        points = self._latest.get(device_id)
        return max((v.ts_us for v in points.values()), default=None) if points else None

    def status(self, device_id: str) -> DeviceState | None:
        return self._status.get(device_id)

    async def series(self, device_id: str, point: str, resolution: str, since_us: int) -> list[Bucket]:
        """Buckets of one point from ``since_us`` on, including what is not flushed yet."""
        width, table = RESOLUTIONS[resolution]
        rows = await self.db.read(
            f"SELECT bucket_us, vmin, vmax, vsum, n, vlast, last_us FROM {table}"  # noqa: S608 - fixed table names
            " WHERE device_id=? AND point=? AND bucket_us>=? ORDER BY bucket_us",
            (device_id, point, since_us - since_us % width),
        )
        merged: dict[int, _Agg] = {r[0]: _Agg(r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows}
        for source in (self._inflight, self._pending):
            for start, agg in source[resolution].get((device_id, point), {}).items():
                if start < since_us - since_us % width:
                    continue
                if start in merged:
                    merged[start].merge(agg)
                else:
                    merged[start] = agg.copy()
        return [Bucket(start, a.vmin, a.vmax, a.vsum / a.n, a.vlast, a.n)
                for start, a in sorted(merged.items()) if a.n > 0]

    # ------------------------------------------------------------------ writing
    async def flush(self) -> None:
        """Merge the deltas gathered since the last flush into the store (one upsert per table)."""
        async with self._flush_lock:
            self._inflight, self._pending = self._pending, _empty()
            count, self._pending_count = self._pending_count, 0
            dirty_latest, self._dirty_latest = self._dirty_latest, set()
            dirty_status, self._dirty_status = self._dirty_status, set()
            writes = []
            for res, (_width, table) in RESOLUTIONS.items():
                rows = [(device_id, point, start, a.vmin, a.vmax, a.vsum, a.n, a.vlast, a.last_us)
                        for (device_id, point), buckets in self._inflight[res].items()
                        for start, a in buckets.items()]
                if rows:
                    writes.append(self.db.write(_UPSERT_ROLLUP.format(table=table), rows))
            latest_rows = []
            for device_id, point in dirty_latest:
                v = self._latest.get(device_id, {}).get(point)
                if v is not None:
                    latest_rows.append((device_id, point, v.value, v.unit, int(v.quality), v.ts_us))
            if latest_rows:
                writes.append(self.db.write(_UPSERT_LATEST, latest_rows))
            status_rows = [(d, int(s.online), s.ts_us, s.since_us, s.error)
                           for d in dirty_status if (s := self._status.get(d)) is not None]
            if status_rows:
                writes.append(self.db.write(_UPSERT_STATUS, status_rows))
            try:
                await asyncio.gather(*writes)
            except BaseException:
                self._restore(count, dirty_latest, dirty_status)
                raise
            finally:
                self._inflight = _empty()
            self.flushes += 1

    def _restore(self, count: int, dirty_latest: set[tuple[str, str]], dirty_status: set[str]) -> None:
        """A flush failed: put its deltas back (bounded), so the next flush retries them."""
        for res, keys in self._inflight.items():
            for key, buckets in keys.items():
                target = self._pending[res].setdefault(key, {})
                for start, agg in buckets.items():
                    if start in target:
                        target[start].merge(agg)
                    else:
                        target[start] = agg
                        self._pending_count += 1
        self._dirty_latest |= dirty_latest
        self._dirty_status |= dirty_status
        if self._pending_count > self.max_pending:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        starts = sorted(start for keys in self._pending.values() for b in keys.values() for start in b)
        cutoff = starts[len(starts) - self.max_pending]
        for keys in self._pending.values():
            for buckets in keys.values():
                for start in [s for s in buckets if s < cutoff]:
                    del buckets[start]
                    self.dropped_buckets += 1
                    self._pending_count -= 1
        log.warning("panel rollups: store not accepting writes; dropped %d chart buckets so far", self.dropped_buckets)

    async def prune(self) -> None:
        now = to_us(self.clock.now())
        for res, (_width, table) in RESOLUTIONS.items():
            await self.db.write(
                f"DELETE FROM {table} WHERE bucket_us < ?", [(now - self.keep_us[res],)]  # noqa: S608
            )

    async def run(self) -> None:
        """Flush every ``flush_interval_s`` (or sooner when deltas pile up) until cancelled; flush on exit."""
        last_prune = -math.inf
        try:
            while True:
                await wait_event(self._wake, self.flush_interval_s)
                self._wake.clear()
                try:
                    await self.flush()
                    if self.clock.monotonic() - last_prune >= 3600:
                        await self.prune()
                        last_prune = self.clock.monotonic()
                except Exception:
                    log.exception("panel rollups: flush failed; retrying next interval")
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.flush())
