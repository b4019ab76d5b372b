"""Fire-lane blocking and e-bike entries, from the vision analytics' events (004 8.3.5, 7.3.3 b)).

Events (folded into ``ind_events``): ``fire.lane_blocked`` opens a blocking *episode* of a lane,
``fire.lane_cleared`` closes it. A lane is the event's camera plus its zone (``data.zone_id``,
else ``data.zone`` or ``data.lane``). A second "blocked" for an open lane is part of the same
episode; a "cleared" with no open episode is ignored. Episodes are looked for up to
``MAX_EPISODE_H`` hours before the period.

* ``fire.lane_block_events``: episodes that started in the period.
* ``fire.lane_block_minutes``: minutes of the period each lane was blocked, summed over lanes (an
  episode still open counts to the end of the period).
* ``fire.lane_clear_time_p50``: median minutes from blocked to cleared of the episodes that started
  in the period and have cleared by now; ``coverage`` = cleared / started (a later clear revises it).
* ``fire.ebike_entry_events``: e-bike entries in the period.

Emitted when the estate has cameras with such zones, or the period saw a blocked lane / an entry.
"""

from __future__ import annotations

from datetime import datetime

from edge.clock import to_us
from edge.indicators.context import EstateContext
from edge.indicators.families.base import median, record
from edge.indicators.periods import Period
from edge.indicators.series import SeriesStore
from edge.records import IndicatorRecord
from edge.store import Store

LANE_BLOCKED = "fire.lane_blocked"
LANE_CLEARED = "fire.lane_cleared"
EBIKE_ENTRY = "fire.ebike_entry"
EVENT_CODES = (LANE_BLOCKED, LANE_CLEARED, EBIKE_ENTRY)
MAX_EPISODE_H = 24
_MINUTE_US = 60 * 1_000_000


def lane_subject(device_id: str | None, data: dict[str, object]) -> str:
    zone = data.get("zone_id") or data.get("zone") or data.get("lane") or ""
    return f"{device_id or ''}/{zone}"


def episodes(rows: list[tuple[str, str, int]]) -> list[tuple[str, int, int | None]]:
    """(subject, start_us, end_us or None) from time-ordered (code, subject, ts_us) rows."""
    open_: dict[str, int] = {}
    out: list[tuple[str, int, int | None]] = []
    for code, subject, ts in rows:
        if code == LANE_BLOCKED:
            open_.setdefault(subject, ts)
        elif code == LANE_CLEARED and subject in open_:
            out.append((subject, open_.pop(subject), ts))
    out.extend((subject, start, None) for subject, start in open_.items())
    return sorted(out, key=lambda e: e[1])


class Lanes:
    name = "lanes"

    async def compute(self, store: Store, series: SeriesStore, period: Period, ctx: EstateContext,
                      now: datetime) -> list[IndicatorRecord]:
        start, end, now_us = period.start_us, period.end_us, to_us(now)
        rows = await series.events_between((LANE_BLOCKED, LANE_CLEARED), start - MAX_EPISODE_H * 3600 * 1_000_000,
                                            max(now_us, end))
        out: list[IndicatorRecord] = []
        eps = episodes(rows)
        horizon = min(end, now_us)
        overlapping = sum(1 for e in eps if e[1] < horizon and (e[2] is None or e[2] > start))
        if ctx.lane_zones or overlapping:
            started = [e for e in eps if start <= e[1] < end]
            blocked_us = sum(max(0, min(e[2] if e[2] is not None else horizon, horizon) - max(e[1], start))
                             for e in eps)
            cleared = [(e[2] - e[1]) / _MINUTE_US for e in started if e[2] is not None]
            out += [
                record(ctx, "fire.lane_block_events", period, float(len(started)), len(started), 1.0, now),
                record(ctx, "fire.lane_block_minutes", period, blocked_us / _MINUTE_US, overlapping, 1.0, now),
                record(ctx, "fire.lane_clear_time_p50", period, median(cleared), len(cleared),
                       len(cleared) / len(started) if started else 1.0, now),
            ]
        entries = await series.count_events(EBIKE_ENTRY, start, end)
        if ctx.ebike_zones or entries:
            out.append(record(ctx, "fire.ebike_entry_events", period, float(entries), entries, 1.0, now))
        return out
