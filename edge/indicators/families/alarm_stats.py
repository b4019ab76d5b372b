"""Alarm handling statistics: the closed loop the platform scores (002 5.2.1.2 d)-e), 5.5.4.2 b)).

Over the alarms *raised* in the period (the ``alarms`` table, as of computation time):

* ``alarm.closure_rate``: closed / raised, where closed = resolved by staff (a disposal record),
  or acknowledged and then cleared by itself. ``null`` when no alarm was raised.
* ``alarm.resolve_time_p50``: median minutes from raised to resolved; ``coverage`` = resolved /
  raised. As staff acknowledge and resolve, the period's records get new versions.
* ``energy.abnormal_events``: abnormal-consumption alarms raised (codes ``energy.*``).
"""

from __future__ import annotations

from datetime import datetime

from edge.indicators.context import EstateContext
from edge.indicators.families.base import median, ratio, record
from edge.indicators.periods import Period
from edge.indicators.series import SeriesStore
from edge.records import IndicatorRecord
from edge.store import Store

ENERGY_PREFIX = "energy."


class AlarmStats:
    name = "alarms"

    async def compute(self, store: Store, series: SeriesStore, period: Period, ctx: EstateContext,
                      now: datetime) -> list[IndicatorRecord]:
        rows = await store.alarms.raised_between(period.start_us, period.end_us)
        total = len(rows)
        closed = sum(1 for a in rows if a.resolved_us is not None or (a.acked_us is not None and a.cleared_us is not None))
        resolve_min = [(a.resolved_us - a.raised_us) / 60e6 for a in rows if a.resolved_us is not None]
        abnormal = sum(1 for a in rows if str(a.code).startswith(ENERGY_PREFIX))
        return [
            record(ctx, "alarm.closure_rate", period, ratio(closed, total), total, 1.0, now),
            record(ctx, "alarm.resolve_time_p50", period, median(resolve_min), len(resolve_min),
                   len(resolve_min) / total if total else 1.0, now),
            record(ctx, "energy.abnormal_events", period, float(abnormal), abnormal, 1.0, now),
        ]
