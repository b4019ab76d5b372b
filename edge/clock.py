"""Injectable time, so the store, rules and indicators can run a simulated day in seconds.

Everything that stamps or compares times takes a ``Clock``. Production uses ``SystemClock``;
tests and the time-accelerated scenario use ``ManualClock``. Timestamps are always UTC and
offset-aware; ``monotonic()`` is for measuring durations and never goes backwards.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, UTC, offset-aware."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never decreases."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that only moves when told to (``advance`` / ``set``)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an offset-aware start time")
        self._now = start.astimezone(UTC)
        self._mono = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    def set(self, when: datetime) -> None:
        delta = (when.astimezone(UTC) - self._now).total_seconds()
        self._now = when.astimezone(UTC)
        self._mono += max(delta, 0.0)


def utc(dt: datetime) -> datetime:
    """Return ``dt`` in UTC; a naive datetime is a bug, so it is refused rather than guessed."""
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}: timestamps must be offset-aware")
    return dt.astimezone(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def to_us(dt: datetime) -> int:
    """Microseconds since the epoch (the store's integer time column); exact, and on the hot path.

    Aware-datetime subtraction is exact in any time zone, so no conversion to UTC is needed.
    """
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}: timestamps must be offset-aware")
    return (dt - _EPOCH) // _ONE_US


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


def iso_z(dt: datetime) -> str:
    """An instant as the upload contract writes it everywhere, ``data`` included: UTC, milliseconds, ``Z``.

    ``2025-02-28T18:01:00.000Z``; a naive datetime raises ``ValueError`` (see ``to_us``).
    """
    return from_us(to_us(dt)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
