"""device.online_rate, data.completeness, facility.monitored_kinds: from the devices' presence.

* **Online time** of a device: a report at time r keeps it online until r + K x poll interval
  (K = ``thresholds.offline_after_failures``, the rule engine's own offline criterion), so the
  online time of an hour is the length of the union of those intervals inside the hour (reports
  from the end of the previous hour count). ``device.online_rate`` = online time summed over the
  configured devices / (devices x period length): the time-weighted share of devices online.
  ``coverage`` = share of devices that reported at all in the period.
* **Completeness**: expected readings of a device = points it reports x period / poll interval;
  each second's readings count up to the number of points (a duplicated poll cannot make up for a
  missing one). ``data.completeness`` = collected / expected over all devices; ``samples`` =
  readings collected. It is emitted for every period, even with no devices (value null).
* **Facility kinds** (002 5.6.5.2): the public-facility kinds (lighting, environment, water supply
  and drainage, HVAC, energy metering, EV charging, power distribution) with at least one device
  reporting; ``coverage`` = live kinds / configured kinds.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from edge.indicators.context import EstateContext
from edge.indicators.families.base import HourData, Partial, ratio, record
from edge.indicators.periods import Period
from edge.records import IndicatorRecord

HOUR_S = 3600.0


def online_seconds(reports_s: np.ndarray, window_s: float, length_s: float) -> float:
    """Length of the union of ``[r, r + window_s)`` over ``reports_s``, clipped to ``[0, length_s)``."""
    if reports_s.size == 0:
        return 0.0
    starts = np.clip(np.sort(reports_s), 0.0, length_s)
    ends = np.clip(np.sort(reports_s) + window_s, 0.0, length_s)
    reach = np.maximum.accumulate(ends)
    following = np.append(starts[1:], np.inf)
    return float(np.clip(np.minimum(reach, following) - starts, 0.0, None).sum())


class Availability:
    name = "availability"

    def hour_partial(self, hour: HourData, ctx: EstateContext) -> Partial:
        out: Partial = {}
        for device in ctx.devices.values():
            now_s, before_s = hour.presence_seconds(device.id)
            window = ctx.offline_after_failures * device.poll_interval_s
            online = online_seconds(np.concatenate([before_s - HOUR_S, now_s]), window, HOUR_S)
            counts = hour.series.presence.get(device.id)
            points = ctx.n_points(device.id)
            collected = float(np.minimum(counts["c"], points).sum()) if counts is not None else 0.0
            expected = points * device.expected_per_hour
            reported = 1.0 if now_s.size else 0.0
            out[device.id] = [online, HOUR_S, min(collected, expected), expected, reported]
        return out

    def records(self, part: Partial, period: Period, ctx: EstateContext, now: datetime) -> list[IndicatorRecord]:
        devices = [d for d in ctx.devices.values() if d.id in part]
        online = sum(part[d.id][0] for d in devices)
        span = sum(part[d.id][1] for d in devices)
        collected = sum(part[d.id][2] for d in devices)
        expected = sum(part[d.id][3] for d in devices)
        reporting = sum(1 for d in devices if part[d.id][4] > 0)
        out = [
            record(ctx, "device.online_rate", period, ratio(online, span), len(devices),
                   reporting / len(devices) if devices else 0.0, now),
            record(ctx, "data.completeness", period, ratio(collected, expected), collected,
                   1.0 if devices else 0.0, now),
        ]
        configured = {d.facility_kind for d in devices if d.facility_kind}
        live = {d.facility_kind for d in devices if d.facility_kind and part[d.id][4] > 0}
        facility_devices = sum(1 for d in devices if d.facility_kind)
        out.append(record(ctx, "facility.monitored_kinds", period, float(len(live)), facility_devices,
                          len(live) / len(configured) if configured else 0.0, now))
        return out
