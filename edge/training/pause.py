"""When training must step aside: a pause file, or the analytics (any other process) using the CPU.

The gateway's analytics come first. Between optimiser steps the trainer asks ``PauseGate.wait``,
which returns at once unless (a) the pause file exists (the daemon, a script or an installer can
create it: ``touch <training dir>/pause``), or (b) processes other than the trainer used more than
``busy_fraction`` of all cores since the last check, measured from ``/proc/stat`` minus the trainer's
own ``/proc/self/stat`` times. It then polls until both are clear or the deadline passes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path


def _system_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    with open("/proc/stat", encoding="ascii") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def _own_ticks() -> int:
    with open("/proc/self/stat", encoding="ascii") as fh:
        after_name = fh.read().rsplit(")", 1)[1].split()
    return int(after_name[11]) + int(after_name[12])  # utime + stime, all threads


class CpuContention:
    """Share of all cores that other processes used between two calls of ``others``."""

    def __init__(self) -> None:
        self._last = (*_system_ticks(), _own_ticks())

    def others(self) -> float:
        busy, total = _system_ticks()
        own = _own_ticks()
        last_busy, last_total, last_own = self._last
        self._last = (busy, total, own)
        elapsed = total - last_total
        if elapsed <= 0:
            return 0.0
        return max(0.0, (busy - last_busy) - (own - last_own)) / elapsed


class PauseGate:
    def __init__(self, pause_file: Path, busy_fraction: float, *, contention: CpuContention | None = None,
                 poll_s: float = 2.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.pause_file = pause_file
        self.busy_fraction = busy_fraction
        self._contention = contention or CpuContention()
        self._poll_s = poll_s
        self._sleep = sleep
        self._clock = clock
        self.last_reason = ""

    def reason(self) -> str:
        """Why training should pause now ("" when it need not)."""
        if self.pause_file.exists():
            return f"pause file {self.pause_file}"
        share = self._contention.others()
        if share > self.busy_fraction:
            return f"other processes use {share:.0%} of the CPU (limit {self.busy_fraction:.0%})"
        return ""

    def wait(self, deadline: float) -> float:
        """Block while training should pause (at most until ``deadline``); returns seconds paused."""
        start = self._clock()
        self.last_reason = self.reason()
        while self.last_reason and self._clock() < deadline:
            self._sleep(self._poll_s)
            self.last_reason = self.reason()
        return self._clock() - start


def lower_priority(niceness: int) -> int:
    """Raise this process's niceness to at least ``niceness``; returns the resulting value."""
    current = os.nice(0)
    if niceness > current:
        return os.nice(niceness - current)
    return current
