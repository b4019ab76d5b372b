"""Abnormal energy and water use as alarms (004 8.4.8 b)-c)): night flow, monthly quota, sudden jumps.

``EnergyWatch`` has the rule engine's interface (``on_readings`` / ``on_status`` / ``on_events`` ->
``AlarmTransition``), so the pipeline runs it beside the shared threshold engine (``RuleChain``) and
its alarms go through the same ``AlarmManager``: deduplicated, escalated, notified, disposed and
uploaded like any other. It watches each meter's counter point (the continuous total the
normaliser produces; see ``EstateContext.counter_point``), using the readings' own timestamps, so
a replayed or time-accelerated day behaves like a real one.

Consumption between two samples is spread evenly over the time between them and accumulated in
windows aligned to local midnight. A window spanned by a data gap longer than two windows is
*unknown*: it neither proves nor disproves anything.

* ``energy.night_flow`` (leak suspected): every ``night_interval_min`` window of the local night
  (``night_start``-``night_end``) had consumption above ``night_flow_min``, for
  ``night_min_duration_min`` in a row. Clears at the first complete window without flow (day or
  night). Watched for the categories in ``night_categories`` (water by default).
* ``energy.over_quota``: month-, quarter- or year-to-date consumption above ``monthly_quota``,
  ``quarterly_quota`` or ``yearly_quota`` [device id] or, summed over the meters of a sub-item,
  [``"sub_item:<tag>"``] (per category); ``energy.quota_warning`` once it reaches
  ``quota_warn_ratio`` of the quota, before the limit (004 8.4.8 c)). One alarm per subject and
  period kind (the alarm key's point: ``None`` for the month, ``"quarter"``, ``"year"``); both clear
  when the local month, quarter or year ends. ``restore_usage`` rebuilds the figures after a restart
  (month-to-date from the series, earlier months of the quarter and year from the monthly
  consumption indicators).
* ``energy.sudden_jump``: a ``jump_window_min`` window's rate (per hour) above ``jump_factor`` times
  the meter's baseline (an exponential average with time constant ``jump_baseline_hours``, learnt
  from 8 windows on) and above ``jump_min_rate``. Clears when a window's rate falls to half the
  jump limit. The baseline does not learn while a jump alarm is open.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.clock import from_us, to_us
from edge.config.indicators import EnergyWatchConfig
from edge.indicators.context import COUNTER_UNITS, DeviceInfo, EstateContext
from edge.indicators.series import SeriesStore, merge_samples
from edge.messages import MessageFields, say
from edge.records import DeviceStatus, Event, Quality, Reading, Severity
from edge.store import Store
from edge.transitions import AlarmKey, AlarmRules, AlarmTransition, OpenAlarm, TransitionKind

if TYPE_CHECKING:
    from edge.config import EstateConfig

NIGHT_FLOW = "energy.night_flow"
OVER_QUOTA = "energy.over_quota"
SUDDEN_JUMP = "energy.sudden_jump"
QUOTA_WARNING = "energy.quota_warning"
CODES = (NIGHT_FLOW, OVER_QUOTA, SUDDEN_JUMP, QUOTA_WARNING)
# Quota period kinds: (config field, the alarm key's point slot).
QUOTA_PERIODS: dict[str, tuple[str, str | None]] = {
    "month": ("monthly_quota", None), "quarter": ("quarterly_quota", "quarter"), "year": ("yearly_quota", "year"),
}
# Monthly consumption indicator per meter category (restore_usage sums a quarter's and a year's months).
_MONTH_INDICATORS = {"electricity": "energy.electricity_kwh", "water": "energy.water_m3", "gas": "energy.gas_m3",
                     "heat": "energy.heat_kwh"}
BASELINE_WARMUP_WINDOWS = 8
UNITS = {"electricity": "kWh", "water": "m3", "gas": "m3", "heat": "kWh"}


class _Windows:
    """Consumption per fixed window aligned to local midnight; calls ``on_close(start, end, used|None)``."""

    def __init__(self, minutes: float, day_start: Callable[[int], int],
                 on_close: Callable[[int, int, float | None], None]) -> None:
        self.length_us = int(minutes * 60 * 1_000_000)
        self.day_start = day_start
        self.on_close = on_close
        self.start_us: int | None = None
        self.used = 0.0

    def _start_of(self, ts_us: int) -> int:
        day = self.day_start(ts_us)
        return day + (ts_us - day) // self.length_us * self.length_us

    def add(self, t1_us: int, t2_us: int, amount: float) -> None:
        """Spread ``amount`` consumed over ``(t1_us, t2_us]`` onto the windows it covers."""
        span = t2_us - t1_us
        unknown = span > 2 * self.length_us
        if self.start_us is None:
            self.start_us = self._start_of(t1_us)
        t = t1_us
        while t < t2_us:
            start = self._start_of(t)
            if start != self.start_us:
                self._close(unknown)
                self.start_us = start
            end = min(t2_us, start + self.length_us)
            if span > 0:
                self.used += amount * (end - t) / span
            t = end
        if t2_us >= self.start_us + self.length_us:
            self._close(unknown)
            self.start_us = self._start_of(t2_us)

    def _close(self, unknown: bool) -> None:
        assert self.start_us is not None
        self.on_close(self.start_us, self.start_us + self.length_us, None if unknown else self.used)
        self.used = 0.0


@dataclass
class _Meter:
    device: DeviceInfo
    last_us: int | None = None
    last_total: float | None = None
    night: _Windows | None = None
    jump: _Windows | None = None
    night_run: int = 0
    baseline: float | None = None
    baseline_windows: int = 0
    month_start_us: int = 0
    month_used: float = 0.0
    quarter_start_us: int = 0
    quarter_used: float = 0.0
    year_start_us: int = 0
    year_used: float = 0.0

    def used(self, period: str) -> float:
        return float(getattr(self, f"{period}_used"))

    def start(self, period: str) -> int:
        return int(getattr(self, f"{period}_start_us"))


@dataclass
class EnergyWatch:
    """Implements the pipeline's ``RuleEngine`` protocol for abnormal consumption."""

    ctx: EstateContext
    settings: EnergyWatchConfig = field(default_factory=EnergyWatchConfig)

    def __post_init__(self) -> None:
        self._meters: dict[str, _Meter] = {}
        self._open: set[AlarmKey] = set()
        self._out: list[AlarmTransition] = []
        self._day_cache: dict[int, int] = {}

    @classmethod
    def from_config(cls, config: EstateConfig) -> EnergyWatch:
        ctx = EstateContext.from_config(config)
        return cls(ctx, ctx.settings.energy)

    # ------------------------------------------------------------------ rule-engine protocol

    def restore(self, open_alarms: Iterable[OpenAlarm]) -> None:
        """Seed the open set from the store, so a restart neither repeats a raise nor forgets to clear."""
        for alarm in open_alarms:
            key = alarm.key
            if key[0] in CODES:
                self._open.add(key)

    def on_status(self, status: DeviceStatus) -> list[AlarmTransition]:
        return []

    def on_events(self, events: Sequence[Event]) -> list[AlarmTransition]:
        return []

    def on_readings(self, readings: Sequence[Reading]) -> list[AlarmTransition]:
        self._out = []
        devices = self.ctx.devices
        current: str | None = None
        device: DeviceInfo | None = None
        for r in readings:
            if r.device_id != current:  # a poll's readings come together: one lookup per device run
                current = r.device_id
                device = devices.get(current)
                if device is not None and device.category not in COUNTER_UNITS:
                    device = None
            if device is None:
                continue
            self.ctx.learn_point(r.device_id, r.point, r.unit)
            if r.point != self.ctx.counter_point(r.device_id) or r.quality is Quality.BAD or not math.isfinite(r.value):
                continue
            self._sample(self._meter(device), to_us(r.ts), r.value)
        return self._out

    # ------------------------------------------------------------------ per meter

    def _meter(self, device: DeviceInfo) -> _Meter:
        meter = self._meters.get(device.id)
        if meter is None:
            meter = _Meter(device)
            s = self.settings
            meter.jump = _Windows(s.jump_window_min, self._day_start,
                                  lambda a, b, used: self._jump_window(meter, a, b, used))
            if device.category in s.night_categories:
                meter.night = _Windows(s.night_interval_min, self._day_start,
                                       lambda a, b, used: self._night_window(meter, a, b, used))
            self._meters[device.id] = meter
        return meter

    def _sample(self, meter: _Meter, ts_us: int, total: float) -> None:
        if meter.last_us is not None and ts_us <= meter.last_us:
            return  # out of order: the windows have moved on
        if meter.last_us is None or meter.last_total is None:
            meter.last_us, meter.last_total = ts_us, total
            for period in QUOTA_PERIODS:
                setattr(meter, f"{period}_start_us", self._period_start(period, ts_us))
            return
        used = max(0.0, total - meter.last_total)
        t1 = meter.last_us
        meter.last_us, meter.last_total = ts_us, total
        self._month(meter, t1, ts_us, used)
        for windows in (meter.night, meter.jump):
            if windows is not None:
                windows.add(t1, ts_us, used)

    # ------------------------------------------------------------------ night flow

    def _is_night(self, start_us: int, end_us: int) -> bool:
        a = from_us(start_us).astimezone(self.ctx.calendar.tz).time()
        b = (from_us(end_us - 1)).astimezone(self.ctx.calendar.tz).time()
        return _in_window(a, self.settings.night_start, self.settings.night_end) and _in_window(
            b, self.settings.night_start, self.settings.night_end)

    def _night_window(self, meter: _Meter, start_us: int, end_us: int, used: float | None) -> None:
        key: AlarmKey = (NIGHT_FLOW, meter.device.id, None)
        s = self.settings
        if used is None:
            meter.night_run = 0
            return
        flowing = used > s.night_flow_min
        if not flowing:
            meter.night_run = 0
            if key in self._open:
                self._emit(key, TransitionKind.CLEAR, end_us, Severity.INFO, meter.device,
                           say("energy.night_flow_ended", device=meter.device.id, start=self._hm(start_us),
                               end=self._hm(end_us)),
                           {"window_used": round(used, 6)})
            return
        if not self._is_night(start_us, end_us):
            meter.night_run = 0
            return
        meter.night_run += 1
        if meter.night_run * s.night_interval_min >= s.night_min_duration_min and key not in self._open:
            unit = UNITS[meter.device.category]
            self._emit(key, TransitionKind.RAISE, end_us, Severity.MAJOR, meter.device,
                       say(NIGHT_FLOW, device=meter.device.id, minutes=round(meter.night_run * s.night_interval_min),
                           used=round(used, 3), unit=unit, window_min=s.night_interval_min),
                       {"minutes": meter.night_run * s.night_interval_min, "window_used": round(used, 6),
                        "unit": unit})

    # ------------------------------------------------------------------ sudden jumps

    def _jump_window(self, meter: _Meter, start_us: int, end_us: int, used: float | None) -> None:
        if used is None:
            return
        s = self.settings
        hours = (end_us - start_us) / 3.6e9
        rate = used / hours
        key: AlarmKey = (SUDDEN_JUMP, meter.device.id, None)
        rates: dict[str, float] = {category: rate for category, rate in s.jump_min_rate.items()}  # any str key
        minimum = rates.get(meter.device.category, 0.0)
        limit = s.jump_factor * (meter.baseline or 0.0)
        learnt = meter.baseline_windows >= BASELINE_WARMUP_WINDOWS
        if learnt and rate > limit and rate >= minimum:
            if key not in self._open:
                unit = UNITS[meter.device.category]
                self._emit(key, TransitionKind.RAISE, end_us, Severity.WARNING, meter.device,
                           say(SUDDEN_JUMP, device=meter.device.id, rate=round(rate, 2), unit=unit,
                               factor=round(rate / max(meter.baseline or 1e-9, 1e-9), 1),
                               baseline=round(meter.baseline or 0.0, 2)),
                           {"rate_per_h": round(rate, 6), "baseline_per_h": round(meter.baseline or 0.0, 6),
                            "unit": unit})
            return
        if key in self._open:
            if rate <= limit / 2:
                self._emit(key, TransitionKind.CLEAR, end_us, Severity.INFO, meter.device,
                           say("energy.sudden_jump_ended", device=meter.device.id, rate=round(rate, 2),
                               unit=UNITS[meter.device.category]),
                           {"rate_per_h": round(rate, 6)})
            return
        alpha = min(1.0, hours / s.jump_baseline_hours) if meter.baseline_windows else 1.0
        meter.baseline = rate if meter.baseline is None else meter.baseline + alpha * (rate - meter.baseline)
        meter.baseline_windows += 1

    # ------------------------------------------------------------------ quotas (month, quarter, year)

    def _month(self, meter: _Meter, t1_us: int, t2_us: int, used: float) -> None:
        for period, (_field, slot) in QUOTA_PERIODS.items():
            start = self._period_start(period, t2_us)
            if start != meter.start(period):
                # A new local period: only the part of this increase after midnight counts towards it.
                share = (t2_us - start) / (t2_us - t1_us) if t2_us > t1_us else 1.0
                setattr(meter, f"{period}_start_us", start)
                setattr(meter, f"{period}_used", used * min(1.0, max(0.0, share)))
                for key in [k for k in self._open if k[0] in (OVER_QUOTA, QUOTA_WARNING) and k[2] == slot
                            and self._quota_covers(k[1], meter.device)]:
                    self._emit(key, TransitionKind.CLEAR, start, Severity.INFO, meter.device,
                               say("energy.quota_new_period", **_quota_subject(key[1]), period=period), {})
            else:
                setattr(meter, f"{period}_used", meter.used(period) + used)
            self._check_quotas(meter, t2_us, period)

    def _check_quotas(self, meter: _Meter, ts_us: int, period: str) -> None:
        field_name, slot = QUOTA_PERIODS[period]
        quotas: dict[str, float] = getattr(self.settings, field_name)
        if not quotas:
            return
        device = meter.device
        unit = UNITS[device.category]
        checks: list[tuple[str, float, float, DeviceInfo | None]] = []
        if device.id in quotas:
            checks.append((device.id, meter.used(period), quotas[device.id], device))
        if device.sub_item and f"sub_item:{device.sub_item}" in quotas:
            used = sum(m.used(period) for m in self._meters.values() if m.device.sub_item == device.sub_item
                       and m.device.category == device.category and m.start(period) == meter.start(period))
            checks.append((f"sub_item:{device.sub_item}:{device.category}", used,
                           quotas[f"sub_item:{device.sub_item}"], None))
        warn = self.settings.quota_warn_ratio
        for subject, used, quota, owner in checks:
            data = {f"{period}_used": round(used, 6), "quota": quota, "unit": unit, "period": period}
            warning: AlarmKey = (QUOTA_WARNING, subject, slot)
            if warn is not None and used >= warn * quota and warning not in self._open:
                self._emit(warning, TransitionKind.RAISE, ts_us, Severity.WARNING, owner,
                           say("energy.quota_warning_sub_item" if owner is None else QUOTA_WARNING,
                               **_quota_subject(subject), period=period, used=round(used, 1), quota=quota,
                               unit=unit, percent=round(100 * used / quota) if quota else 100),
                           {**data, "warn_ratio": warn})
            key: AlarmKey = (OVER_QUOTA, subject, slot)
            if used > quota and key not in self._open:
                self._emit(key, TransitionKind.RAISE, ts_us, Severity.WARNING, owner,
                           say("energy.over_quota_sub_item" if owner is None else OVER_QUOTA,
                               **_quota_subject(subject), period=period, used=round(used, 1), quota=quota,
                               unit=unit),
                           data)

    def _quota_covers(self, subject: str, device: DeviceInfo) -> bool:
        return subject == device.id or subject == f"sub_item:{device.sub_item}:{device.category}"

    async def restore_usage(self, store: Store, now: datetime) -> None:
        """After a restart: month-to-date use and the last total of each meter from the indicator series.

        Needs the indicator engine's tables (``IndicatorEngine.start`` / a first ``tick`` folds the
        latest readings). Consumption between the last sample before the month and the first one
        in it is not counted (at most one poll interval's worth).
        """
        month_start = self._month_start(to_us(now))
        series = SeriesStore(store)  # the indicator engine's tables: this watch is part of that package
        for device in self.ctx.devices.values():
            if device.category not in COUNTER_UNITS:
                continue
            for known, unit in await series.device_points(device.id):
                self.ctx.learn_point(device.id, known, unit)
            point = self.ctx.counter_point(device.id)
            if point is None:
                continue
            chunks = await series.chunks_since(device.id, point, self.ctx.calendar.hour_start_us(month_start))
            by_hour: dict[int, list[np.ndarray]] = {}
            for hour_us, samples in chunks:
                by_hour.setdefault(hour_us, []).append(samples)
            ts: list[int] = []
            values: list[float] = []
            for hour_us in sorted(by_hour):
                merged = merge_samples(by_hour[hour_us])
                good = merged[merged["q"] != int(Quality.BAD)]
                ts += [hour_us + int(t) * 1000 for t in good["t"]]
                values += [float(v) for v in good["v"]]
            pairs = [(t, v) for t, v in zip(ts, values, strict=True) if t >= month_start]
            if not pairs:
                continue
            meter = self._meter(device)
            meter.month_start_us = month_start
            meter.month_used = max(0.0, pairs[-1][1] - pairs[0][1])
            meter.last_us, meter.last_total = pairs[-1]
            for period in ("quarter", "year"):
                start = self._period_start(period, to_us(now))
                earlier = await _closed_months(store, _MONTH_INDICATORS.get(device.category, ""), device.id, start,
                                               month_start)
                setattr(meter, f"{period}_start_us", start)
                setattr(meter, f"{period}_used", earlier + meter.month_used)

    # ------------------------------------------------------------------ helpers

    def _emit(self, key: AlarmKey, kind: TransitionKind, ts_us: int, severity: Severity, device: DeviceInfo | None,
              text: MessageFields, data: dict[str, Any]) -> None:
        if kind is TransitionKind.RAISE:
            self._open.add(key)
        else:
            self._open.discard(key)
        code, subject, point = key
        self._out.append(AlarmTransition(
            code=code, subject=subject, kind=kind, ts=from_us(ts_us), severity=severity, **text,
            device_id=device.id if device else None, point=point,
            data={**data, "subject": subject, "point": point},
        ))

    def _day_start(self, ts_us: int) -> int:
        hour = self.ctx.calendar.hour_start_us(ts_us)
        start = self._day_cache.get(hour)
        if start is None:
            start = self.ctx.calendar.period_of("day", from_us(ts_us)).start_us
            if len(self._day_cache) > 10_000:
                self._day_cache.clear()
            self._day_cache[hour] = start
        return start

    def _month_start(self, ts_us: int) -> int:
        return self.ctx.calendar.period_of("month", from_us(ts_us)).start_us

    def _period_start(self, period: str, ts_us: int) -> int:
        """Start of the local month, calendar quarter or year holding ``ts_us`` (microseconds)."""
        month = self._month_start(ts_us)
        if period == "month":
            return month
        local = from_us(month).astimezone(self.ctx.calendar.tz)
        first = 1 if period == "year" else (local.month - 1) // 3 * 3 + 1
        return to_us(local.replace(month=first, day=1, hour=0, minute=0, second=0, microsecond=0))

    def _hm(self, ts_us: int) -> str:
        return from_us(ts_us).astimezone(self.ctx.calendar.tz).strftime("%H:%M")


class RuleChain:
    """Several rule engines behind the pipeline's one ``rules`` slot; transitions in engine order."""

    def __init__(self, *engines: AlarmRules) -> None:
        self.engines = engines

    def on_readings(self, readings: Sequence[Reading]) -> list[AlarmTransition]:
        return [t for e in self.engines for t in e.on_readings(readings)]

    def on_status(self, status: DeviceStatus) -> list[AlarmTransition]:
        return [t for e in self.engines for t in e.on_status(status)]

    def on_events(self, events: Sequence[Event]) -> list[AlarmTransition]:
        return [t for e in self.engines for t in e.on_events(events)]

    def restore(self, open_alarms: Iterable[OpenAlarm]) -> None:
        alarms = list(open_alarms)
        for engine in self.engines:
            engine.restore(alarms)


def _in_window(t: time, start: time, end: time) -> bool:
    """``start <= t < end`` on a 24-hour clock, the window may wrap midnight (e.g. 23:00-05:00)."""
    if start < end:
        return start <= t < end
    return t >= start or t < end


async def _closed_months(store: Store, code: str, device_id: str, start_us: int, end_us: int) -> float:
    """Consumption of ``device_id`` in the months from ``start_us`` to ``end_us``.

    From the monthly indicators (the highest version of each month); 0 when the engine has not computed them.
    """
    if not code or end_us <= start_us:
        return 0.0
    best: dict[str, tuple[int, float]] = {}
    for r in await store.records.indicators_between(code, "month", start_us, end_us):
        if r.value is None or json.loads(r.payload).get("dimensions") != {"device": device_id}:
            continue
        if r.key not in best or int(r.version) > best[r.key][0]:
            best[r.key] = (int(r.version), float(r.value))
    return sum(v for _version, v in best.values())


def _quota_subject(subject: str) -> dict[str, str]:
    """Message parameters naming a quota's subject: a device id, or ``sub_item:<tag>:<category>``."""
    if subject.startswith("sub_item:"):
        parts = subject.split(":")
        return {"device": "", "sub_item": parts[1], "category": parts[2] if len(parts) > 2 else ""}
    return {"device": subject, "sub_item": "", "category": ""}
