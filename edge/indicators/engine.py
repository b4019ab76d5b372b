"""The indicator engine: fold new data, compute due periods, revise closed ones, emit versioned records.

Every ``interval_s`` (``tick``):

1. **Fold** the readings and events accepted since the last fold (found by id, ``edge.indicators.series``)
   into the hourly series, noting which local hours they touched. Late data touches old hours.
2. **Emit due periods**: each hour, day and month (estate time zone) that ended at least
   ``close_delay_s`` ago, back to ``backfill_hours`` (what a restart missed) but not before the
   engine's epoch (the hour it first ran, or of the oldest data it folded), and that has no record
   yet, is computed and stored as version 1.
3. **Revise**: a period that already has records and was touched (late readings or detections, an
   alarm acknowledged or resolved later) is recomputed; each record whose value, samples or coverage
   changed is stored again with the same key and version + 1, for periods up to ``revise_days`` old.

Restart safety: nothing that matters lives only in memory. The series and the fold cursors are in
the store (written together); which periods are done is read back from the ``indicators`` table
(every period has a ``data.completeness`` record); a restart in the middle of an hour resumes folding
after the last committed cursor and computes the hour when it is due, neither counting a reading
twice (the series merge is idempotent) nor missing one.

Records go to the store's indicator lane (``Store.append_indicators``); the uplink sends them.
Day and month figures are sums of hourly partials (``families.base``), so a day always agrees with
its hours.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.clock import Clock, SystemClock, from_us, to_us
from edge.indicators.catalog import CODES, MARKER_CODE
from edge.indicators.context import COUNTER_UNITS, EstateContext
from edge.indicators.demo_clock import demo_clock_loop, is_demo_key
from edge.indicators.families import Partial, combine, direct_families, series_families
from edge.indicators.families.base import CounterWindow, HourData
from edge.indicators.families.lanes import EVENT_CODES, LANE_BLOCKED, LANE_CLEARED, lane_subject
from edge.indicators.periods import GRANULARITIES, Period
from edge.indicators.series import HOUR_US, PRESENCE, SAMPLE, HourSeries, SeriesStore
from edge.records import IndicatorRecord, Quality
from edge.store import Store
from edge.tasks import cancel_and_wait

if TYPE_CHECKING:
    from edge.config import EstateConfig

log = logging.getLogger(__name__)

FOLD_CHUNK = 20_000  # events per fold step (one cursor move each)
FOLD_POLLS = 1_000  # stored polls per fold step (about 30,000 readings on a 30-point farm)
MAX_POLL_PLANS = 10_000  # remembered (device, poll shape) plans (a device's polls usually repeat one shape)
NEIGHBOUR_LIMIT_US = 48 * HOUR_US  # how far a meter's previous / next sample is looked for
_BAD = int(Quality.BAD)
_SKIP, _PRESENCE, _VALUES = 0, 1, 2


@dataclass(frozen=True, slots=True)
class _Latest:
    version: int
    value: float | None
    samples: int
    coverage: float


@dataclass
class _Gathered:
    """What one fold chunk adds: presence per (device, hour) and second, values of the kept points."""

    presence: dict[tuple[str, int], dict[int, int]] = field(default_factory=dict)
    values: dict[tuple[str, str, int], dict[int, tuple[float, int]]] = field(default_factory=dict)
    units: dict[tuple[str, str], str] = field(default_factory=dict)
    spans: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    new_points: list[tuple[str, str, str, int]] = field(default_factory=list)

    def value(self, device_id: str, point: str, unit: str, value: float, quality: int, ts_us: int,
              hour_us: int) -> None:
        """Keep one value (the last one of a millisecond wins, as readings come in id order)."""
        self.values.setdefault((device_id, point, hour_us), {})[(ts_us - hour_us) // 1000] = (value, quality)
        self.units[(device_id, point)] = unit
        span = self.spans.get((device_id, point))
        if span is None:
            self.spans[(device_id, point)] = [ts_us, ts_us]
        elif ts_us < span[0]:
            span[0] = ts_us
        elif ts_us > span[1]:
            span[1] = ts_us


@dataclass
class EngineStats:
    readings_folded: int = 0
    events_folded: int = 0
    records_emitted: int = 0
    revisions: int = 0
    ticks: int = 0


class IndicatorEngine:
    """Async context manager; ``tick()`` may also be driven by hand (tests, a time-accelerated day)."""

    def __init__(self, store: Store, config: EstateConfig, *, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.ctx = EstateContext.from_config(config)
        self.settings = self.ctx.settings
        self.calendar = self.ctx.calendar
        self.series = SeriesStore(store)
        self.series_families = series_families()
        self.direct_families = direct_families()
        self.stats = EngineStats()
        self._hours: OrderedDict[int, HourSeries] = OrderedDict()
        self._hour_parts: OrderedDict[int, dict[str, Partial]] = OrderedDict()
        self._day_parts: OrderedDict[int, dict[str, Partial]] = OrderedDict()
        self._emitted: set[tuple[str, int]] = set()
        self._last_counter_us: dict[tuple[str, str], int] = {}
        self._point_kinds: dict[tuple[str, str, str], int] = {}
        # Count presence in SQLite (False: walk every reading; the bench's baseline and a test's reference).
        self.counted_fold = True
        self._poll_plans: dict[tuple[str, int], tuple[int, tuple[tuple[str, str, str], ...]]] = {}
        self._alarm_cursor_us = 0
        self._epoch_us = 0
        self._run_us = 0  # when this run of the gateway began (its uptime row)
        self._legacy_until_us = 0  # before this, time counts as running (stores older than ind_uptime)
        self._pruned_day = -1
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._demo_task: asyncio.Task[None] | None = None
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> IndicatorEngine:
        await self.start()
        self._task = asyncio.create_task(self._loop(), name="indicators")
        if self.settings.demo_period_s:  # estate.demo only (the config refuses it otherwise)
            self._demo_task = asyncio.create_task(demo_clock_loop(self), name="indicators-demo-clock")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await cancel_and_wait(self._demo_task)
        await cancel_and_wait(self._task)
        self._task = self._demo_task = None

    async def start(self) -> None:
        """Create the tables, and rebuild what the engine knows from the store."""
        if self._started:
            return
        await self.series.migrate()
        for device_id, point, unit, _first in await self.series.known_points():
            self.ctx.learn_point(device_id, point, unit)
        now_us = to_us(self.clock.now())
        self._run_us = now_us
        epoch = await self.series.state("epoch_us")
        legacy = await self.series.state("uptime_legacy_until_us")
        if legacy is None:
            # A store that computed figures before runs were recorded: its past counts as running.
            legacy = "0" if epoch is None else str(now_us)
            await self.series.set_state("uptime_legacy_until_us", legacy)
        self._legacy_until_us = int(legacy)
        await self.series.start_run(now_us)
        if epoch is None:
            self._epoch_us = self.calendar.hour_start_us(now_us)
            await self.series.set_state("epoch_us", str(self._epoch_us))
        else:
            self._epoch_us = int(epoch)
        window_us = int((max(self.settings.revise_days, self.settings.backfill_hours / 24) + 31) * 86400e6)
        periods = await self.store.records.indicator_periods(MARKER_CODE, now_us - window_us)
        self._emitted = {(p.granularity, p.start_us) for p in periods if not is_demo_key(p.key)}  # demo: not a close
        self._alarm_cursor_us = await self.store.alarms.last_update_us()
        self._started = True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.interval_s)
            try:
                await self.tick()
            except Exception:
                log.exception("indicators: tick failed")

    @property
    def epoch(self) -> datetime:
        return from_us(self._epoch_us)

    # ------------------------------------------------------------------ the tick

    async def tick(self) -> list[IndicatorRecord]:
        """Fold, emit due periods, revise touched ones. Returns the records stored by this tick."""
        await self.start()
        async with self._lock:
            self.stats.ticks += 1
            await self.series.heartbeat(self._run_us, to_us(self.clock.now()))  # this run is alive
            dirty_series, dirty_any = await self._fold()
            dirty_any |= dirty_series | await self._alarm_changes()
            self._invalidate(dirty_series)
            now = self.clock.now()
            out: list[IndicatorRecord] = []
            fresh: set[tuple[str, int]] = set()
            for period in self._due_periods(now):
                if (period.granularity, period.start_us) not in self._emitted:
                    out += await self._emit(period, now)
                    fresh.add((period.granularity, period.start_us))
            for period in self._revisable(dirty_any, now):
                if (period.granularity, period.start_us) not in fresh:
                    revised = await self._emit(period, now)
                    self.stats.revisions += len(revised)
                    out += revised
            await self._maybe_prune(now)
            return out

    def _due_periods(self, now: datetime) -> Iterable[Period]:
        horizon_us = to_us(now) - int(self.settings.close_delay_s * 1e6)
        lower_us = max(self._epoch_us, to_us(now) - self.settings.backfill_hours * HOUR_US)
        for granularity in GRANULARITIES:
            for period in self.calendar.periods(granularity, from_us(lower_us), from_us(horizon_us)):
                if period.end_us <= horizon_us and period.end_us > self._epoch_us:
                    yield period

    def _revisable(self, hours: set[int], now: datetime) -> list[Period]:
        horizon_us = to_us(now) - int(self.settings.close_delay_s * 1e6)
        oldest = now - timedelta(days=self.settings.revise_days)
        out: dict[tuple[str, int], Period] = {}
        for hour_us in sorted(hours):
            for granularity in GRANULARITIES:
                period = self.calendar.period_of(granularity, from_us(hour_us))
                key = (granularity, period.start_us)
                if key in out or key not in self._emitted:
                    continue
                if period.end_us <= horizon_us and period.start >= oldest:
                    out[key] = period
        return list(out.values())

    # ------------------------------------------------------------------ computing and emitting

    async def compute(self, period: Period, now: datetime | None = None) -> list[IndicatorRecord]:
        """All records of ``period`` from what is folded so far (unversioned, not stored), e.g. for the panel."""
        await self.start()
        async with self._lock:
            return await self._compute(period, now or self.clock.now())

    def reconfigure(self, config: EstateConfig) -> None:
        """A reloaded estate config: new devices, limits and settings from the next tick on.

        The points seen so far are kept; cached hourly partials are dropped (expected counts and
        ranges may have changed). Records already emitted are not recomputed.
        """
        points = self.ctx.points
        self.ctx = EstateContext.from_config(config)
        self.ctx.points = points
        self.settings = self.ctx.settings
        self.calendar = self.ctx.calendar
        self._hours.clear()
        self._hour_parts.clear()
        self._day_parts.clear()
        self._point_kinds.clear()
        self._poll_plans.clear()

    async def _compute(self, period: Period, now: datetime) -> list[IndicatorRecord]:
        parts = await self._period_parts(period)
        records: list[IndicatorRecord] = []
        for family in self.series_families:
            records += family.records(parts.get(family.name, {}), period, self.ctx, now)
        for direct in self.direct_families:
            records += await direct.compute(self.store, self.series, period, self.ctx, now)
        return records

    async def _emit(self, period: Period, now: datetime) -> list[IndicatorRecord]:
        records = await self._compute(period, now)
        latest = await self._latest(period)
        out = []
        for r in records:
            prev = latest.get(r.key)
            if prev is None:
                out.append(r)
            elif (prev.value, prev.samples, prev.coverage) != (r.value, r.samples, r.coverage):
                out.append(replace(r, version=prev.version + 1))
        if out:
            await self.store.append_indicators(out)
            self.stats.records_emitted += len(out)
        self._emitted.add((period.granularity, period.start_us))
        return out

    async def _latest(self, period: Period) -> dict[str, _Latest]:
        rows = await self.store.records.indicators_of_period(CODES, period.granularity, period.start_us)
        out: dict[str, _Latest] = {}
        for r in rows:
            if r.key not in out or r.version > out[r.key].version:
                out[r.key] = _Latest(int(r.version), r.value, int(r.samples), float(r.coverage))
        return out

    async def _period_parts(self, period: Period) -> dict[str, Partial]:
        if period.granularity == "hour":
            return await self._hour_part(period.start_us)
        if period.granularity == "day":
            return await self._day_part(period)
        days = self.calendar.periods("day", period.start, period.end - timedelta(microseconds=1))
        return _combine_families([await self._day_part(day) for day in days])

    async def _day_part(self, day: Period) -> dict[str, Partial]:
        cached = self._day_parts.get(day.start_us)
        if cached is not None:
            self._day_parts.move_to_end(day.start_us)
            return cached
        start = max(day.start_us, self.calendar.hour_start_us(self._epoch_us))
        parts = [await self._hour_part(h) for h in self.calendar.hours(start, day.end_us)]
        result = _combine_families(parts)
        self._day_parts[day.start_us] = result
        _trim(self._day_parts, 70)
        return result

    async def _hour_part(self, hour_us: int) -> dict[str, Partial]:
        cached = self._hour_parts.get(hour_us)
        if cached is not None:
            self._hour_parts.move_to_end(hour_us)
            return cached
        data = await self._hour_data(hour_us)
        result = {f.name: f.hour_partial(data, self.ctx) for f in self.series_families}
        self._hour_parts[hour_us] = result
        _trim(self._hour_parts, 24 * 8)
        return result

    async def _hour_data(self, hour_us: int) -> HourData:
        series = await self._load(hour_us)
        previous = await self._load(self.calendar.hour_start_us(hour_us - 1))
        end_us = self.calendar.next_hour_us(hour_us)
        uptime_s, runs = await self.series.uptime(hour_us, end_us, self._legacy_until_us)
        data = HourData(hour_us, series, previous, uptime_s=uptime_s, runs_started=runs)
        following: HourSeries | None = None
        for category in COUNTER_UNITS:
            for meter in self.ctx.meters(category):
                point = self.ctx.counter_point(meter.id)
                if point is None:
                    continue
                inside = _good(series.samples(meter.id, point), hour_us)
                before = await self._edge_sample(meter.id, point, previous, before=True)
                if following is None:
                    following = await self._load(end_us)
                after = await self._edge_sample(meter.id, point, following, before=False)
                ts = [*before[0], *inside[0], *after[0]]
                values = [*before[1], *inside[1], *after[1]]
                data.counters[(meter.id, point)] = CounterWindow(np.asarray(ts, np.int64),
                                                                 np.asarray(values, np.float64), len(inside[0]))
        return data

    async def _edge_sample(self, device_id: str, point: str, neighbour: HourSeries, *,
                           before: bool) -> tuple[list[int], list[float]]:
        """The neighbouring hour's last good sample (``before``) or its first, as one-element lists.

        ``neighbour`` is the hour just before or just after the one being computed; an hour without a good
        sample there falls back to the nearest stored hour within ``NEIGHBOUR_LIMIT_US``.
        """
        ts, values = _good(neighbour.samples(device_id, point), neighbour.hour_us)
        if not ts:
            hour = await self.series.neighbour_hour(device_id, point, neighbour.hour_us, before=before,
                                                    limit_us=NEIGHBOUR_LIMIT_US)
            if hour is None:
                return [], []
            ts, values = _good(await self.series.point_samples(device_id, point, hour), hour)
        if not ts:
            return [], []
        return ([ts[-1]], [values[-1]]) if before else ([ts[0]], [values[0]])

    async def _load(self, hour_us: int) -> HourSeries:
        cached = self._hours.get(hour_us)
        if cached is not None:
            self._hours.move_to_end(hour_us)
            return cached
        series = await self.series.load_hour(hour_us)
        closed_until = to_us(self.clock.now()) - int(self.settings.close_delay_s * 1e6)
        if series.fragmented and self.calendar.next_hour_us(hour_us) <= closed_until:
            await self.series.compact(series)
        self._hours[hour_us] = series
        _trim(self._hours, 8)
        return series

    def _invalidate(self, hours: set[int]) -> None:
        for hour_us in hours:
            self._hours.pop(hour_us, None)
            self._hour_parts.pop(hour_us, None)
            self._day_parts.pop(self.calendar.period_of("day", from_us(hour_us)).start_us, None)

    # ------------------------------------------------------------------ folding

    async def fold(self) -> tuple[set[int], set[int]]:
        """Fold new readings and events now (normally part of ``tick``)."""
        await self.start()
        async with self._lock:
            dirty_series, dirty_any = await self._fold()
            self._invalidate(dirty_series)
            return dirty_series, dirty_any

    async def _fold(self) -> tuple[set[int], set[int]]:
        dirty_series: set[int] = set()
        dirty_any: set[int] = set()
        await self._fold_readings(dirty_series)
        await self._fold_events(dirty_any)
        return dirty_series, dirty_any

    async def _fold_readings(self, dirty: set[int]) -> None:
        last_id, seq = await self.series.cursor("readings")
        while True:
            gather = self._gather_counted if self.counted_fold else self._gather_rows
            gathered, upto_id, count, polls = await gather(last_id)
            if polls == 0:
                return
            seq += 1
            await self._write_gathered(gathered, seq, upto_id, dirty)
            self.stats.readings_folded += count
            last_id = upto_id
            if polls < FOLD_POLLS:
                return

    async def _gather_counted(self, after_id: str) -> tuple[_Gathered, str, int, int]:
        """The next chunk's presence and values: ``(gathered, last poll id, readings, polls)`` (the fold's path).

        Why: presence is a count of readings per device and second, and most points keep nothing
        else; walking every reading in Python cost about 3 us each, at 15,000 readings/s a few per
        cent of a core. Here one row per stored poll crosses over (``polls_after``), what to count
        and keep is decided once per (device, poll shape), and only the polls of devices with kept
        series are parsed (``series_values_in``).
        """
        polls = await self.store.records.polls_after(after_id, FOLD_POLLS)
        out = _Gathered()
        if not polls:
            return out, after_id, 0, 0
        hour_of = self.calendar.hour_start_us
        presence = out.presence
        keep: set[tuple[str, str, str]] = set()
        plans = self._poll_plans
        unknown = {shape for device_id, _t, _n, shape, _id in polls if (device_id, shape) not in plans}
        names = await self.store.records.shapes(unknown) if unknown else {}
        count = 0
        for device_id, ts_us, n, shape, _rid in polls:
            plan = plans.get((device_id, shape))
            if plan is None:
                plan = self._plan(device_id, names[shape], ts_us, out.new_points)
                if len(plans) >= MAX_POLL_PLANS:
                    plans.clear()
                plans[(device_id, shape)] = plan
            counted, kept = plan
            count += n
            keep.update(kept)
            if counted:
                hour_us = hour_of(ts_us)
                seconds = presence.setdefault((device_id, hour_us), {})
                second = (ts_us - hour_us) // 1_000_000
                seconds[second] = seconds.get(second, 0) + counted
        upto_id = polls[-1][4]
        for device_id, point, unit, value, quality, ts_us in await self.store.records.series_values_in(
                after_id, upto_id, keep):
            if value is not None:
                out.value(device_id, point, unit, value, quality, ts_us, hour_of(ts_us))
        return out, upto_id, count, len(polls)

    def _plan(self, device_id: str, names: Sequence[tuple[str, str]], ts_us: int,
              new_points: list[tuple[str, str, str, int]]) -> tuple[int, tuple[tuple[str, str, str], ...]]:
        """For one poll shape of a device: how many of its readings count as presence, and which series keep values."""
        kinds = self._point_kinds
        counted = 0
        kept: list[tuple[str, str, str]] = []
        for point, unit in names:
            kind = kinds.get((device_id, point, unit))
            if kind is None:
                kind = kinds[(device_id, point, unit)] = self._point_kind(device_id, point, unit, ts_us, new_points)
            if kind != _SKIP:
                counted += 1
            if kind == _VALUES:
                kept.append((device_id, point, unit))
        return counted, tuple(kept)

    async def _gather_rows(self, after_id: str) -> tuple[_Gathered, str, int, int]:
        """The next chunk's presence and values, reading by reading (the reference the counted path is tested against)."""
        out = _Gathered()
        presence = out.presence
        kinds = self._point_kinds
        hour_of = self.calendar.hour_start_us
        last_key: tuple[str, int] | None = None
        seconds: dict[int, int] = {}
        hour_us = offset = 0
        rows, upto_id, polls = await self.store.records.readings_after(after_id, FOLD_POLLS)
        for _rid, device_id, point, value, unit, quality, ts_us in rows:
            kind = kinds.get((device_id, point, unit))
            if kind is None:
                kind = kinds[(device_id, point, unit)] = self._point_kind(device_id, point, unit, ts_us,
                                                                          out.new_points)
            if kind == _SKIP:
                continue
            if last_key is None or last_key[0] != device_id or last_key[1] != ts_us:
                # Readings of one poll share device and timestamp: look the bucket up once per poll.
                hour_us = hour_of(ts_us)
                offset = ts_us - hour_us
                seconds = presence.setdefault((device_id, hour_us), {})
                last_key = (device_id, ts_us)
            second = offset // 1_000_000
            seconds[second] = seconds.get(second, 0) + 1
            if kind == _VALUES and value is not None:
                out.value(device_id, point, unit, value, quality, ts_us, hour_us)
        return out, upto_id, len(rows), polls

    async def _write_gathered(self, gathered: _Gathered, seq: int, upto_id: str, dirty: set[int]) -> None:
        """Store one chunk's series rows with the fold cursor, then note the hours it touched."""
        touched = {h for _d, h in gathered.presence}
        dirty |= touched
        earliest = min(touched) if touched else None
        units = gathered.units
        chunk = [
            (d, "", h, seq, "", np.array([(s, min(c, 65535)) for s, c in sorted(m.items())], PRESENCE).tobytes())
            for (d, h), m in gathered.presence.items()
        ]
        chunk += [
            (d, p, h, seq, units[(d, p)],
             np.array([(t, v, q) for t, (v, q) in sorted(m.items())], SAMPLE).tobytes())
            for (d, p, h), m in gathered.values.items()
        ]
        await self.series.add_points(gathered.new_points)
        await self.series.write_chunks(chunk, {"readings": (upto_id, seq)})
        for (device_id, point), (first_us, last_us) in gathered.spans.items():
            dirty |= await self._counter_hours(device_id, point, first_us, last_us)
        # Online time carries over an hour's end: the next hour may change too.
        dirty |= {self.calendar.next_hour_us(h) for h in list(dirty)}
        if earliest is not None and earliest < self._epoch_us:
            await self._lower_epoch(earliest)

    def _point_kind(self, device_id: str, point: str, unit: str, ts_us: int,
                    new_points: list[tuple[str, str, str, int]]) -> int:
        """What the fold keeps of a (device, point, unit): nothing, presence, or presence and values."""
        device = self.ctx.devices.get(device_id)
        if device is None or not device.counts_point(point):
            return _SKIP
        if self.ctx.learn_point(device_id, point, unit):
            new_points.append((device_id, point, unit, ts_us))
        return _VALUES if self.ctx.keeps_values(device_id, point, unit) else _PRESENCE

    async def _counter_hours(self, device_id: str, point: str, first_us: int, last_us: int) -> set[int]:
        """Hours whose consumption new samples of a meter total can change (the gap they close)."""
        device = self.ctx.devices[device_id]
        if device.category not in COUNTER_UNITS:
            return set()
        hour_of = self.calendar.hour_start_us
        known = self._last_counter_us.get((device_id, point))
        if known is not None and first_us > known:
            low, high = hour_of(known), hour_of(last_us)
        else:  # first sight since start, or out of order: ask the series where the neighbours are
            before = await self.series.neighbour_hour(device_id, point, hour_of(first_us), before=True,
                                                      limit_us=NEIGHBOUR_LIMIT_US)
            after = await self.series.neighbour_hour(device_id, point, hour_of(last_us), before=False,
                                                     limit_us=NEIGHBOUR_LIMIT_US)
            low = before if before is not None else hour_of(first_us)
            high = after if after is not None else hour_of(last_us)
        self._last_counter_us[(device_id, point)] = max(known or last_us, last_us)
        return set(self.calendar.hours(low, high + 1))

    async def _lower_epoch(self, hour_us: int) -> None:
        floor = to_us(self.clock.now()) - int(self.settings.revise_days * 86400e6)
        epoch = max(hour_us, self.calendar.hour_start_us(floor))
        if epoch < self._epoch_us:
            self._epoch_us = epoch
            await self.series.set_state("epoch_us", str(epoch))

    async def _fold_events(self, dirty: set[int]) -> None:
        last_id, _ = await self.series.cursor("events")
        hour_of = self.calendar.hour_start_us
        while True:
            rows = await self.store.records.events_after(last_id, FOLD_CHUNK)
            if not rows:
                return
            keep = []
            for rid, code, device_id, data, ts_us in rows:
                if code in EVENT_CODES:
                    keep.append((rid, code, device_id, lane_subject(device_id, json.loads(data)), int(ts_us)))
            await self.series.add_events(keep)
            for _rid, code, _device, subject, ts_us in keep:
                dirty.add(hour_of(ts_us))
                if code == LANE_CLEARED:  # the episode it ends started earlier: revise that period too
                    started_us = await self.series.last_event_us(LANE_BLOCKED, subject, ts_us)
                    if started_us is not None:
                        dirty.add(hour_of(started_us))
            last_id = rows[-1].id
            await self.series.write_chunks([], {"events": (last_id, 0)})
            self.stats.events_folded += len(keep)
            if len(rows) < FOLD_CHUNK:
                return

    async def _alarm_changes(self) -> set[int]:
        hours = set()
        for alarm in await self.store.alarms.updated_after(self._alarm_cursor_us):
            hours.add(self.calendar.hour_start_us(int(alarm.raised_us)))
            self._alarm_cursor_us = max(self._alarm_cursor_us, int(alarm.updated_us))
        return hours

    async def _maybe_prune(self, now: datetime) -> None:
        day = to_us(now) // (86400 * 1_000_000)
        if day != self._pruned_day:
            self._pruned_day = day
            await self.series.prune(to_us(now - timedelta(days=self.settings.retention_days)))


def _good(samples: np.ndarray, hour_us: int) -> tuple[list[int], list[float]]:
    ok = (samples["q"] != _BAD) & np.isfinite(samples["v"])
    kept = samples[ok]
    return [hour_us + int(t) * 1000 for t in kept["t"]], [float(v) for v in kept["v"]]


def _combine_families(parts: list[dict[str, Partial]]) -> dict[str, Partial]:
    names = {name for part in parts for name in part}
    return {name: combine(p.get(name, {}) for p in parts) for name in names}


def _trim(cache: OrderedDict[int, Any], size: int) -> None:
    while len(cache) > size:
        cache.popitem(last=False)
