"""Injectable time, so the store, rules and indicators can run a simulated day in seconds.

Everything that stamps or compares times takes a ``Clock``. Production uses ``SystemClock``;
tests and the time-accelerated scenario use ``ManualClock``. Timestamps are always UTC and
offset-aware; ``monotonic()`` is for measuring durations and never goes backwards.

A component that waits (a poll scheduler) waits with the clock's own ``sleep``, so that under a
``ManualClock`` a test moves time on by hand (``advance``, or ``advance_to_next_wake`` to jump to the
earliest sleeper) and sees exactly the slots, retries and backoff steps the code chose, with no
wall-clock time spent and nothing left to chance.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, UTC, offset-aware."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never decreases."""

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` of this clock's monotonic time have passed."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()  # the same clock as asyncio's loop.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that only moves when told to (``advance`` / ``set``); its sleepers wake as it moves."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an offset-aware start time")
        self._now = start.astimezone(UTC)
        self._mono = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)  # still a scheduling point, as asyncio.sleep(0) is
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._order), waiter))
        await waiter

    @property
    def sleeping(self) -> int:
        """How many tasks are waiting on this clock (cancelled sleeps no longer count)."""
        return sum(1 for _, _, waiter in self._sleepers if not waiter.done())

    def next_wake(self) -> float | None:
        """The monotonic time of the earliest pending sleeper, or ``None``."""
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds
        self._wake_due()

    def advance_to_next_wake(self) -> float:
        """Jump to the earliest sleeper's wake-up time and wake it; returns how far time moved."""
        wake = self.next_wake()
        if wake is None:
            raise RuntimeError("nothing is sleeping on this clock")
        step = max(wake - self._mono, 0.0)
        self.advance(step)
        return step

    def set(self, when: datetime) -> None:
        delta = (when.astimezone(UTC) - self._now).total_seconds()
        self._now = when.astimezone(UTC)
        self._mono += max(delta, 0.0)
        self._wake_due()

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._mono:
            _, _, waiter = heapq.heappop(self._sleepers)
            if not waiter.done():
                waiter.set_result(None)


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
