"""Indicator periods: hours, days and months aligned to the estate's time zone, as UTC instants.

A period is ``[start, end)`` in UTC, but its boundaries are local: the day of an estate in
Asia/Shanghai runs from 16:00 UTC to 16:00 UTC, a month from local midnight of the 1st. Zones
with daylight saving time get 23- and 25-hour days and the repeated hour stays two distinct
hours (``datetime.fold``); zones with half-hour offsets get local hours that straddle UTC hours.
Everything here is pure and cached; ``LocalCalendar.hour_start_us`` is on the ingest-fold hot path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from edge.clock import from_us, to_us

GRANULARITIES: tuple[str, ...] = ("hour", "day", "month")
_QUARTER_US = 15 * 60 * 1_000_000  # every UTC offset in use is a multiple of 15 minutes


@dataclass(frozen=True, slots=True)
class Period:
    granularity: str
    start: datetime  # UTC, offset-aware
    end: datetime

    @property
    def start_us(self) -> int:
        return to_us(self.start)

    @property
    def end_us(self) -> int:
        return to_us(self.end)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


class LocalCalendar:
    """Period arithmetic in one IANA time zone."""

    def __init__(self, timezone: str) -> None:
        self.tz = ZoneInfo(timezone)
        self._hour_cache: dict[int, int] = {}

    # ------------------------------------------------------------------ hours

    def hour_start_us(self, ts_us: int) -> int:
        """Start (UTC microseconds) of the local hour containing ``ts_us``."""
        quarter = ts_us // _QUARTER_US
        start = self._hour_cache.get(quarter)
        if start is None:
            local = from_us(quarter * _QUARTER_US).astimezone(self.tz)
            start = to_us(local.replace(minute=0, second=0, microsecond=0))
            if len(self._hour_cache) > 100_000:
                self._hour_cache.clear()
            self._hour_cache[quarter] = start
        return start

    def next_hour_us(self, hour_us: int) -> int:
        """Start of the local hour after the one starting at ``hour_us``.

        Exact for every zone whose offsets differ by whole hours or are fixed (Asia/Shanghai,
        Asia/Kolkata, Europe/Berlin ...); a 30-minute DST shift (Lord Howe Island) is not handled.
        """
        return self.hour_start_us(hour_us + 3600 * 1_000_000)

    def hours(self, start_us: int, end_us: int) -> Iterator[int]:
        """Local hour starts in ``[start_us, end_us)``."""
        h = self.hour_start_us(start_us)
        if h < start_us:
            h = self.next_hour_us(h)
        while h < end_us:
            yield h
            h = self.next_hour_us(h)

    # ------------------------------------------------------------------ periods

    def period_of(self, granularity: str, ts: datetime) -> Period:
        """The period of ``granularity`` containing instant ``ts``."""
        local = ts.astimezone(self.tz)
        if granularity == "hour":
            start = to_us(local.replace(minute=0, second=0, microsecond=0))
            return Period("hour", from_us(start), from_us(self.next_hour_us(start)))
        if granularity == "day":
            start_local = datetime(local.year, local.month, local.day, tzinfo=self.tz)
            end_local = start_local.date() + timedelta(days=1)
            return Period("day", start_local.astimezone(UTC),
                          datetime(end_local.year, end_local.month, end_local.day, tzinfo=self.tz).astimezone(UTC))
        if granularity == "month":
            start_local = datetime(local.year, local.month, 1, tzinfo=self.tz)
            year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
            return Period("month", start_local.astimezone(UTC), datetime(year, month, 1, tzinfo=self.tz).astimezone(UTC))
        raise ValueError(f"unknown granularity {granularity!r}; known: {', '.join(GRANULARITIES)}")

    def periods(self, granularity: str, start: datetime, end: datetime) -> Iterator[Period]:
        """Periods of ``granularity`` that end after ``start`` and start before ``end``."""
        period = self.period_of(granularity, start)
        while period.start < end:
            yield period
            period = self.period_of(granularity, period.end)

    def local(self, ts: datetime) -> datetime:
        return ts.astimezone(self.tz)
