"""The two shapes an indicator family takes, and the hour view the series families read.

* A **series family** (availability, fire compliance, energy) computes an additive *partial* per
  local hour from the folded series (``hour_partial``); a day is the element-wise sum of its hours'
  partials and a month the sum of its days', so a month never re-reads a month of samples, and
  ``records`` turns a summed partial into indicator records.
* A **direct family** (fire lanes and e-bikes, alarm handling) reads its few rows per period
  straight from its table (``compute``).

Partials are ``dict[key, list[float]]``; summing is the only way they combine, which is what keeps
a day equal to the sum of its hours.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np

from edge.indicators.catalog import SPECS
from edge.indicators.context import EstateContext
from edge.indicators.periods import Period
from edge.indicators.series import EMPTY_PRESENCE, HOUR_US, HourSeries, SeriesStore
from edge.records import IndicatorRecord
from edge.store import Store

Partial = dict[Hashable, list[float]]


def combine(parts: Iterable[Partial]) -> Partial:
    out: Partial = {}
    for part in parts:
        for key, values in part.items():
            acc = out.get(key)
            if acc is None:
                out[key] = list(values)
            else:
                for i, v in enumerate(values):
                    acc[i] += v
    return out


@dataclass
class CounterWindow:
    """A meter total's samples that matter for one hour: the last before, those inside, the first after."""

    ts_us: np.ndarray  # int64, absolute UTC microseconds, sorted
    values: np.ndarray  # float64
    inside: int  # how many of them fall inside the hour


@dataclass
class HourData:
    """One local hour of folded series, with the neighbours the families need."""

    hour_us: int
    series: HourSeries
    previous: HourSeries  # the hour before (online time carries over its boundary)
    counters: dict[tuple[str, str], CounterWindow] = field(default_factory=dict)
    uptime_s: float = HOUR_US / 1e6  # seconds of the hour the gateway ran (edge.indicators.series.uptime)
    runs_started: int = 0  # gateway (re)starts inside the hour

    @property
    def end_us(self) -> int:
        return self.hour_us + HOUR_US

    def presence_seconds(self, device_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(seconds of this hour with a report, seconds of the previous hour with a report)."""
        now = self.series.presence.get(device_id, EMPTY_PRESENCE)
        before = self.previous.presence.get(device_id, EMPTY_PRESENCE)
        return now["s"].astype(np.float64), before["s"].astype(np.float64)


class SeriesFamily(Protocol):
    name: str

    def hour_partial(self, hour: HourData, ctx: EstateContext) -> Partial: ...

    def records(self, part: Partial, period: Period, ctx: EstateContext, now: datetime) -> list[IndicatorRecord]: ...


class DirectFamily(Protocol):
    name: str

    async def compute(self, store: Store, series: SeriesStore, period: Period, ctx: EstateContext,
                      now: datetime) -> list[IndicatorRecord]: ...


def record(ctx: EstateContext, code: str, period: Period, value: float | None, samples: float, coverage: float,
           now: datetime, dimensions: dict[str, str] | None = None) -> IndicatorRecord:
    """An indicator record with the catalog's unit and clauses; numbers rounded for stable comparison."""
    spec = SPECS[code]
    if value is not None:
        value = round(float(value), 6)
    return IndicatorRecord(
        estate_id=ctx.estate_id, gateway_id=ctx.gateway_id, code=code, granularity=period.granularity,
        period_start=period.start, period_end=period.end, value=value, unit=spec.unit, samples=round(float(samples)),
        coverage=round(min(1.0, max(0.0, float(coverage))), 4), clauses=spec.clauses,
        dimensions=dict(dimensions or {}), computed_at=now,
    )


def ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def median(values: Sequence[float]) -> float | None:
    return float(np.median(np.asarray(values, dtype=np.float64))) if len(values) else None
