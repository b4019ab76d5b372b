"""device.online_rate, data.completeness, gateway.uptime, facility.monitored_kinds: from the devices' presence.

"Gateway not running" is not "device silent" (issue 13 point 5). The engine records when the
gateway ran (``ind_uptime``: each run's start and its last heartbeat, one per tick), and every figure
below is taken over the time the gateway ran; the share of the period it ran is ``gateway.uptime``
and the ``coverage`` of ``data.completeness`` and ``device.online_rate``. The hour in which a gateway
starts at :53:30 thus reports the completeness of its 6.5 minutes with coverage 0.108, not 0.1 of a
healthy estate with coverage 1. (A crash loses at most one tick interval of uptime, counted as down.)

* **Online time** of a device: a report at time r keeps it online until r + K x poll interval
  (K = ``thresholds.offline_after_failures``, the rule engine's own offline criterion), so the
  online time of an hour is the length of the union of those intervals inside the hour (reports
  from the end of the previous hour count). ``device.online_rate`` = online time summed over the
  configured devices / (devices x time the gateway ran): the time-weighted share of devices online.
  ``coverage`` = share of the period the gateway ran x share of devices that reported at all.
* **Completeness**: expected readings of a device = points it reports x time the gateway ran / poll interval;
  each second's readings count up to the number of points (a duplicated poll cannot make up for a
  missing one). ``data.completeness`` = collected / expected over all devices; ``samples`` =
  readings collected; ``coverage`` = share of the period the gateway ran. It is emitted for every
  period, even with no devices (value null). Seed 000 5.4's 98 % is about the completeness of
  enterprise basic-information fields: it is cited as the source of the threshold only.
* **Uptime**: ``gateway.uptime`` = seconds the gateway ran / period; ``samples`` = (re)starts in the period.
* **Inventory fields**: ``inventory.field_completeness`` = required device-inventory fields filled /
  required (``edge.inventory.field_completeness``, from the configuration in force when computed);
  ``samples`` = devices and cameras. This is the figure seed 000 5.4's 98 % is about.
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
GATEWAY = "__gateway__"  # the partial's key for the gateway's own uptime (never a device id: ids are [A-Za-z0-9_.-])


def period_s(period: Period) -> float:
    return (period.end_us - period.start_us) / 1e6


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
        up = min(HOUR_S, max(0.0, hour.uptime_s))
        out: Partial = {GATEWAY: [up, HOUR_S, float(hour.runs_started)]}
        for device in ctx.devices.values():
            now_s, before_s = hour.presence_seconds(device.id)
            window = ctx.offline_after_failures * device.poll_interval_s
            online = min(up, online_seconds(np.concatenate([before_s - HOUR_S, now_s]), window, HOUR_S))
            counts = hour.series.presence.get(device.id)
            points = ctx.n_points(device.id)
            collected = float(np.minimum(counts["c"], points).sum()) if counts is not None else 0.0
            expected = points * device.expected_per_hour * up / HOUR_S
            reported = 1.0 if now_s.size else 0.0
            out[device.id] = [online, up, min(collected, expected), expected, reported]
        return out

    def records(self, part: Partial, period: Period, ctx: EstateContext, now: datetime) -> list[IndicatorRecord]:
        devices = [d for d in ctx.devices.values() if d.id in part]
        up, length, starts = part.get(GATEWAY, [period_s(period), period_s(period), 0.0])
        ran = up / length if length > 0 else 0.0
        online = sum(part[d.id][0] for d in devices)
        span = sum(part[d.id][1] for d in devices)
        collected = sum(part[d.id][2] for d in devices)
        expected = sum(part[d.id][3] for d in devices)
        reporting = sum(1 for d in devices if part[d.id][4] > 0)
        out = [
            record(ctx, "device.online_rate", period, ratio(online, span), len(devices),
                   ran * reporting / len(devices) if devices else 0.0, now),
            record(ctx, "data.completeness", period, ratio(collected, expected), collected,
                   ran if devices else 0.0, now),
            record(ctx, "gateway.uptime", period, ran, int(starts), 1.0, now),
        ]
        filled, required, entries = ctx.inventory_fields
        out.append(record(ctx, "inventory.field_completeness", period, ratio(filled, required), entries, 1.0, now))
        configured = {d.facility_kind for d in devices if d.facility_kind}
        live = {d.facility_kind for d in devices if d.facility_kind and part[d.id][4] > 0}
        facility_devices = sum(1 for d in devices if d.facility_kind)
        out.append(record(ctx, "facility.monitored_kinds", period, float(len(live)), facility_devices,
                          len(live) / len(configured) if configured else 0.0, now))
        return out
