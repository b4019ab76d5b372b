"""Monotonic totals from meter registers that roll over, get reset, or get swapped for a new meter.

A meter's energy or volume register is a running total, but the number on the wire is not always
monotonic: a 6-digit display rolls from 999 999.9 to 0, staff clear the register, a faulty meter
is replaced by one that starts at 0 (or at whatever the refurbished one shows), and floats jitter
in their last bit. Consumption is the difference of totals, so it must never be negative.

``CounterTracker`` turns the raw register into a *continuous total* that only goes up:

    ==============================  ==============================================  ==========
    raw compared with the last raw  interpretation                                  increment
    ==============================  ==============================================  ==========
    up, plausibly                   consumption                                     raw - last
    up, faster than max_rate        meter swapped for one with a higher reading     0 (rebase)
    down by less than the jitter    float noise / meter correction: hold            0
    down, last near a rollover      rollover at ``rollover`` (or next power of 10)  M - last + raw
    down to near zero               register reset (or a new meter starting at 0)   raw
    down, anywhere else             meter replaced                                  0 (rebase)
    NaN / inf                       decode fault: quality BAD, state untouched      0
    ==============================  ==============================================  ==========

"Rebase" keeps the total where it was and measures later increments from the new raw value, so the
interval in which the swap happened counts zero consumption (the truth is unknowable) and the
reading is marked ``UNCERTAIN``. Every non-trivial case is returned as a ``CounterAnomaly`` so
the pipeline can record it as an event.

Late readings (a timestamp older than the last accepted one: a backfilled poll, a buffered batch
delivered after newer data) are not compared with the last raw value at all: the register was
lower back then, and taking that for a meter swap would rebase the total and lose the consumption
since. A late reading leaves the tracker untouched and raises no anomaly. Its value is mapped onto
the total through the offset (total - raw) that was in force when it was taken, which the tracker
knows for its last few offset periods ("epochs": each rollover, reset or swap starts one); a
reading that falls in no known epoch, or whose raw value does not fit that epoch's range, keeps
its own value with quality ``UNCERTAIN``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from edge.records import Quality


class CounterAnomalyKind(StrEnum):
    ROLLOVER = "rollover"
    RESET = "reset"
    REPLACEMENT = "replacement"
    JUMP = "jump"  # an implausible increase, treated as a replacement
    BACKWARDS = "backwards"  # a small decrease held at the last value
    INVALID = "invalid"  # NaN or infinite raw value


@dataclass(frozen=True, slots=True)
class CounterAnomaly:
    kind: CounterAnomalyKind
    previous_raw: float
    raw: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CounterResult:
    total: float  # the continuous, monotonic total (what the reading reports)
    increment: float  # consumption since the previous accepted reading, never negative
    quality: Quality
    anomaly: CounterAnomaly | None = None


@dataclass(frozen=True, slots=True)
class CounterState:
    """What a tracker needs to continue after a restart (persist it, hand it to ``restore``)."""

    last_raw: float | None
    total: float
    ts: datetime | None = None


@dataclass(slots=True)
class _Epoch:
    """A period in which total = raw + ``offset``; it began at ``start_ts`` with raw ``low``.

    ``high`` is the highest raw value accepted in it (the current epoch's grows with each reading).
    """

    start_ts: datetime
    offset: float
    low: float
    high: float


_EPOCHS_KEPT = 16


class CounterTracker:
    """One counter point's running total. Pure apart from its own state; not thread-safe.

    Parameters (all optional):

    * ``rollover``: the register's modulus if known (e.g. 100000 for a 5-digit kWh display,
      42949672.96 for a uint32 x 0.01 register). Without it, a drop from within ``rollover_band``
      of the next power of ten is taken as a rollover.
    * ``max_rate_per_s``: the most the counter can plausibly grow per second (e.g. a 60 A meter on
      230 V: 0.0038 kWh/s); faster growth is a meter swap, not consumption. ``None`` trusts increases.
    * ``jitter``: relative decrease still treated as noise (default 1e-6 of the value, at least
      ``jitter_abs``).
    * ``reset_fraction``: a drop to at most this share of the last value counts as a reset to zero.
    """

    def __init__(
        self,
        *,
        rollover: float | None = None,
        rollover_band: float = 0.01,
        max_rate_per_s: float | None = None,
        jitter: float = 1e-6,
        jitter_abs: float = 1e-3,
        reset_fraction: float = 0.01,
    ) -> None:
        if rollover is not None and rollover <= 0:
            raise ValueError("rollover must be positive")
        self.rollover = rollover
        self.rollover_band = rollover_band
        self.max_rate_per_s = max_rate_per_s
        self.jitter = jitter
        self.jitter_abs = jitter_abs
        self.reset_fraction = reset_fraction
        self._last_raw: float | None = None
        self._total = 0.0
        self._ts: datetime | None = None
        self._epochs: deque[_Epoch] = deque(maxlen=_EPOCHS_KEPT)

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> CounterState:
        return CounterState(self._last_raw, self._total, self._ts)

    def restore(self, state: CounterState) -> None:
        """Continue from a persisted state.

        ``last_raw=None`` means only the last stored total is known (the store keeps totals). The
        first reading is then compared with that total as if it were the raw register, which is
        exact unless the meter was rebased before the restart; either way totals stay monotonic.
        """
        self._total = state.total
        self._ts = state.ts
        self._last_raw = state.last_raw if state.last_raw is not None else state.total
        # Only the offset at the saved moment is known: earlier late readings cannot be mapped.
        self._epochs.clear()
        if state.ts is not None:
            self._new_epoch(state.ts, self._last_raw)

    def _new_epoch(self, ts: datetime, raw: float) -> None:
        self._epochs.append(_Epoch(ts, self._total - raw, raw, raw))

    def _tolerance(self, value: float) -> float:
        return max(self.jitter * abs(value), self.jitter_abs)

    def _late(self, raw: float, ts: datetime) -> CounterResult:
        """A reading older than the last accepted one: map it, never let it move the state."""
        epochs = self._epochs
        for i in range(len(epochs) - 1, -1, -1):
            epoch = epochs[i]
            if ts < epoch.start_ts:
                continue
            if epoch.low - self._tolerance(epoch.low) <= raw <= epoch.high + self._tolerance(epoch.high):
                return CounterResult(raw + epoch.offset, 0.0, Quality.GOOD)
            break
        return CounterResult(raw, 0.0, Quality.UNCERTAIN)

    # ------------------------------------------------------------------ update

    def update(self, raw: float, ts: datetime) -> CounterResult:
        if not math.isfinite(raw):
            return CounterResult(
                self._total, 0.0, Quality.BAD, CounterAnomaly(CounterAnomalyKind.INVALID, self._last_raw or 0.0, raw)
            )
        if self._ts is not None and ts < self._ts:
            return self._late(raw, ts)
        last = self._last_raw
        dt = (ts - self._ts).total_seconds() if self._ts is not None else None
        self._ts = ts
        if last is None:
            self._last_raw = raw
            self._total = raw
            self._new_epoch(ts, raw)
            return CounterResult(self._total, 0.0, Quality.GOOD)
        result = self._advance(last, raw, dt)
        offset_kept = result.anomaly is None or result.anomaly.kind is CounterAnomalyKind.BACKWARDS
        if offset_kept and self._epochs:
            self._epochs[-1].high = max(self._epochs[-1].high, raw)
        else:
            # A rollover, reset or swap changed the offset here (or, after a restore without a
            # timestamp, this is the first moment the offset is known).
            self._new_epoch(ts, raw)
        return result

    def _advance(self, last: float, raw: float, dt: float | None) -> CounterResult:
        """Compare ``raw`` with ``last`` and move the state (the table in the module docstring)."""
        delta = raw - last
        if delta >= 0:
            if (
                self.max_rate_per_s is not None
                and dt is not None
                and delta > self.max_rate_per_s * max(dt, 1.0)
            ):
                self._last_raw = raw
                return CounterResult(
                    self._total,
                    0.0,
                    Quality.UNCERTAIN,
                    CounterAnomaly(CounterAnomalyKind.JUMP, last, raw, f"+{delta:g} in {dt:g} s"),
                )
            self._last_raw = raw
            self._total += delta
            return CounterResult(self._total, delta, Quality.GOOD)
        # The register went down.
        if -delta <= max(self.jitter * abs(last), self.jitter_abs):
            # Hold the high-water mark: increments resume once the register passes it again.
            return CounterResult(
                self._total, 0.0, Quality.GOOD, CounterAnomaly(CounterAnomalyKind.BACKWARDS, last, raw)
            )
        modulus = self._modulus(last)
        if modulus is not None and raw >= 0:
            gap = modulus - last + raw
            limit = self.rollover_band * modulus
            if self.max_rate_per_s is not None and dt is not None:
                limit = min(limit, self.max_rate_per_s * max(dt, 1.0))
            if 0 <= gap <= limit:
                self._last_raw = raw
                self._total += gap
                anomaly = CounterAnomaly(CounterAnomalyKind.ROLLOVER, last, raw, f"at {modulus:g}")
                return CounterResult(self._total, gap, Quality.GOOD, anomaly)
        self._last_raw = raw
        if 0 <= raw <= self.reset_fraction * abs(last):
            self._total += raw
            return CounterResult(
                self._total, raw, Quality.UNCERTAIN, CounterAnomaly(CounterAnomalyKind.RESET, last, raw)
            )
        return CounterResult(
            self._total, 0.0, Quality.UNCERTAIN, CounterAnomaly(CounterAnomalyKind.REPLACEMENT, last, raw)
        )

    def _modulus(self, last: float) -> float | None:
        if self.rollover is not None:
            return self.rollover
        if last <= 0:
            return None
        # The next power of ten above the last value: where a decimal display rolls over.
        return 10.0 ** math.floor(math.log10(last) + 1)
