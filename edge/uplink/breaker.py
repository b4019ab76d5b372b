"""Circuit breaker: fail fast while the platform is down, probe once it may be back (seed 000 7.2.4).

    CLOSED --(failures >= threshold)--> OPEN --(reset_s elapsed)--> HALF_OPEN
    HALF_OPEN --(probe succeeds)--> CLOSED;  HALF_OPEN --(probe fails)--> OPEN

While OPEN no request is sent at all; in HALF_OPEN exactly one request (the probe) is allowed.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from edge.clock import Clock, SystemClock

log = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, failure_threshold: int = 5, reset_s: float = 30.0, clock: Clock | None = None) -> None:
        self.failure_threshold = failure_threshold
        self.reset_s = reset_s
        self.clock = clock or SystemClock()
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.times_opened = 0
        self._probe_in_flight = False

    def seconds_until_probe(self) -> float:
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.opened_at + self.reset_s - self.clock.monotonic())

    def allow(self) -> bool:
        """May a request go out now? In HALF_OPEN only the first caller gets True (the probe)."""
        if self.state is BreakerState.OPEN and self.seconds_until_probe() <= 0:
            self._set(BreakerState.HALF_OPEN)
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self.failures = 0
        self._probe_in_flight = False
        if self.state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self.failures += 1
        self._probe_in_flight = False
        if self.state is BreakerState.HALF_OPEN or (
            self.state is BreakerState.CLOSED and self.failures >= self.failure_threshold
        ):
            self.opened_at = self.clock.monotonic()
            self.times_opened += 1
            self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        if state is not self.state:
            log.warning("uplink circuit breaker %s -> %s", self.state.value, state.value)
            self.state = state
