"""fire.hydrant_pressure_compliance and fire.water_level_compliance (004 8.3.3; 002 5.5.4).

For every fire pressure / level point with a range (the limits the rule engine alarms on: the
device's ``thresholds`` or the building class default, see ``edge.rules.specs``), the share of
its valid samples (quality not bad) inside the range. Samples are taken at the poll interval, so
the share of samples is the share of time. One record per device (``{"device": id}``) and one
for the estate; ``coverage`` = valid samples / expected samples (poll interval).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from edge.indicators.context import FIRE_CATEGORIES, EstateContext
from edge.indicators.families.base import HourData, Partial, ratio, record
from edge.indicators.periods import Period
from edge.records import IndicatorRecord, Quality


class FireCompliance:
    name = "fire"

    def hour_partial(self, hour: HourData, ctx: EstateContext) -> Partial:
        out: Partial = {}
        for (device_id, point), limits in ctx.ranges.items():
            device = ctx.devices[device_id]
            samples = hour.series.samples(device_id, point)
            good = samples["v"][(samples["q"] != int(Quality.BAD)) & np.isfinite(samples["v"])]
            inside = np.ones(good.size, bool)
            if limits.low is not None:
                inside &= good >= limits.low
            if limits.high is not None:
                inside &= good <= limits.high
            out[(device_id, point)] = [float(inside.sum()), float(good.size), device.expected_per_hour]
        return out

    def records(self, part: Partial, period: Period, ctx: EstateContext, now: datetime) -> list[IndicatorRecord]:
        out: list[IndicatorRecord] = []
        for category, code in FIRE_CATEGORIES.items():
            keys = sorted(k for k in part if isinstance(k, tuple) and ctx.devices[k[0]].category == category)
            if not keys:
                continue
            totals = [0.0, 0.0, 0.0]
            for key in keys:
                inside, valid, expected = part[key]
                totals = [totals[0] + inside, totals[1] + valid, totals[2] + expected]
                out.append(record(ctx, code, period, ratio(inside, valid), valid, ratio(valid, expected) or 0.0, now,
                                  {"device": key[0]} if key[1] == _main_point(category) else
                                  {"device": key[0], "point": key[1]}))
            out.append(record(ctx, code, period, ratio(totals[0], totals[1]), totals[1],
                              ratio(totals[1], totals[2]) or 0.0, now))
        return out


def _main_point(category: str) -> str:
    return "pressure" if category == "fire_pressure" else "level"
