"""Circuit breaker transitions: closed -> open -> half-open -> closed (or back to open)."""

from __future__ import annotations

from datetime import UTC, datetime

from edge.clock import ManualClock
from edge.uplink.breaker import BreakerState, CircuitBreaker


def test_breaker_opens_probes_and_closes() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    breaker = CircuitBreaker(failure_threshold=3, reset_s=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    clock.advance(9.9)
    assert not breaker.allow()
    clock.advance(0.2)
    assert breaker.allow()  # the single probe
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()  # only one probe at a time
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.advance(10.1)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow() and breaker.allow()
    assert breaker.times_opened == 2
