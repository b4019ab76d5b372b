"""energy.electricity_kwh, energy.water_m3, energy.gas_m3 and energy.heat_kwh.

Consumption per meter, per sub-item and in total (004 8.4.8 d) asks for gas and heat metering too).

A meter's consumption comes from its counter point (a continuous, monotonic total once the
normaliser has dealt with rollovers, resets and swaps, see ``edge.normalise.counters``). The
increase between two consecutive samples is spread over the time between them, so an hour gets
exactly the part of each increase that falls inside it: a gap in the data spreads the consumption
across the hours of the gap instead of piling it onto the hour the meter came back, and the hours
of a day always add up to the day. A decrease is never consumption (it counts zero).

Records: ``{"device": id}`` per meter (``samples`` = its samples, ``coverage`` = samples / expected),
``{"sub_item": tag}`` per sub-item of the config (``samples`` = meters), and the total (``{}``).
A meter whose samples are all missing contributes 0 with coverage 0; when its data arrives later
the hours it covers get a new version.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from edge.indicators.context import COUNTER_UNITS, EstateContext
from edge.indicators.families.base import CounterWindow, HourData, Partial, ratio, record
from edge.indicators.periods import Period
from edge.records import IndicatorRecord

CODES = {"electricity": "energy.electricity_kwh", "water": "energy.water_m3", "gas": "energy.gas_m3",
         "heat": "energy.heat_kwh"}


def consumption(ts_us: np.ndarray, values: np.ndarray, start_us: int, end_us: int) -> float:
    """Consumption inside ``[start_us, end_us)`` from sorted total samples, by linear attribution."""
    if ts_us.size < 2:
        return 0.0
    t1, t2 = ts_us[:-1].astype(np.float64), ts_us[1:].astype(np.float64)
    rise = np.clip(values[1:] - values[:-1], 0.0, None)
    span = t2 - t1
    overlap = np.clip(np.minimum(t2, end_us) - np.maximum(t1, start_us), 0.0, None)
    share = np.divide(overlap, span, out=np.zeros_like(span), where=span > 0)
    return float((rise * share).sum())


class Energy:
    name = "energy"

    def hour_partial(self, hour: HourData, ctx: EstateContext) -> Partial:
        out: Partial = {}
        for category in COUNTER_UNITS:
            for meter in ctx.meters(category):
                point = ctx.counter_point(meter.id)
                window = hour.counters.get((meter.id, point)) if point else None
                if window is None:
                    window = CounterWindow(np.zeros(0, np.int64), np.zeros(0), 0)
                used = consumption(window.ts_us, window.values, hour.hour_us, hour.end_us)
                out[(category, meter.id)] = [used, float(window.inside), meter.expected_per_hour]
        return out

    def records(self, part: Partial, period: Period, ctx: EstateContext, now: datetime) -> list[IndicatorRecord]:
        out: list[IndicatorRecord] = []
        for category, code in CODES.items():
            meters = [m for m in ctx.meters(category) if (category, m.id) in part]
            if not meters:
                continue
            groups: dict[str, list[float]] = {}
            total = [0.0, 0.0, 0.0]
            for meter in sorted(meters, key=lambda m: m.id):
                used, present, expected = part[(category, meter.id)]
                out.append(record(ctx, code, period, used, present, ratio(present, expected) or 0.0, now,
                                  {"device": meter.id}))
                total = [total[0] + used, total[1] + present, total[2] + expected]
                if meter.sub_item:
                    acc = groups.setdefault(meter.sub_item, [0.0, 0.0, 0.0, 0.0])
                    acc[0] += used
                    acc[1] += present
                    acc[2] += expected
                    acc[3] += 1
            for tag, (used, present, expected, count) in sorted(groups.items()):
                out.append(record(ctx, code, period, used, count, ratio(present, expected) or 0.0, now,
                                  {"sub_item": tag}))
            out.append(record(ctx, code, period, total[0], len(meters), ratio(total[1], total[2]) or 0.0, now))
        return out
