"""``LoginThrottle`` on its own: growing delays, the two scopes, trust, forgetting, bounded memory."""

from __future__ import annotations

from datetime import UTC, datetime

from edge.clock import ManualClock
from edge.panel.throttle import LoginThrottle

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def _throttle(**kwargs: float) -> tuple[LoginThrottle, ManualClock]:
    clock = ManualClock(T0)
    return LoginThrottle(clock, **kwargs), clock  # type: ignore[arg-type]


def test_delays_double_up_to_the_cap_and_start_once_per_streak() -> None:
    throttle, clock = _throttle(free_failures=3, max_delay_s=20, base_delay_s=2)
    starts = []
    delays = []
    for _ in range(8):
        assert throttle.wait("staff", "10.0.0.1") is None
        starts += throttle.failed("staff", "10.0.0.1")
        wait = throttle.wait("staff", "10.0.0.1")
        delays.append(wait or 0.0)
        clock.advance(wait or 0.0)
    assert delays == [0, 0, 0, 2, 4, 8, 16, 20]
    assert [(s.scope, s.failures, s.delay_s) for s in starts] == [("source", 4, 2.0)]


def test_a_right_password_ends_the_pairs_streak_only() -> None:
    throttle, clock = _throttle(free_failures=1, account_free_failures=2, account_max_delay_s=5)
    throttle.failed("staff", "10.0.0.1")
    throttle.failed("staff", "10.0.0.2")
    throttle.failed("staff", "10.0.0.3")
    assert throttle.wait("staff", "10.0.0.9") is not None  # the account-wide wait for unknown addresses
    clock.advance(10)
    throttle.succeeded("staff", "10.0.0.1")
    assert throttle.wait("staff", "10.0.0.1") is None


def test_account_wide_wait_spares_addresses_that_logged_in_before_and_is_capped() -> None:
    throttle, _clock = _throttle(free_failures=3, account_free_failures=5, account_max_delay_s=30)
    throttle.succeeded("admin", "192.168.1.10")  # the control-room PC
    for n in range(200):
        throttle.failed("admin", f"10.1.{n // 250}.{n % 250}")
    assert throttle.wait("admin", "192.168.1.10") is None
    stranger = throttle.wait("admin", "10.9.9.9")
    assert stranger is not None and stranger <= 30
    assert throttle.throttled("admin")


def test_unknown_names_are_throttled_like_real_ones_and_names_ignore_case() -> None:
    throttle, _clock = _throttle(free_failures=1)
    throttle.failed("Nobody", "10.0.0.1")
    throttle.failed("nobody ", "10.0.0.1")
    assert throttle.wait("NOBODY", "10.0.0.1") is not None


def test_streaks_are_forgotten_and_memory_is_bounded() -> None:
    throttle, clock = _throttle(free_failures=1, max_delay_s=10, forget_after_s=60, max_keys=100)
    throttle.failed("staff", "10.0.0.1")
    throttle.failed("staff", "10.0.0.1")
    assert throttle.wait("staff", "10.0.0.1") is not None
    clock.advance(61)
    throttle.failed("staff", "10.0.0.1")
    assert throttle.wait("staff", "10.0.0.1") is None  # a new streak: one free failure again
    for n in range(1000):
        throttle.failed(f"user{n}", f"10.2.{n // 250}.{n % 250}")
        throttle.succeeded(f"user{n}", "10.3.0.1")
    assert len(throttle._pairs.items) <= 100 and len(throttle._accounts.items) <= 100
    assert len(throttle._trusted) <= 100


def test_clear_lifts_every_wait_of_an_account() -> None:
    throttle, _clock = _throttle(free_failures=1, account_free_failures=1)
    for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        throttle.failed("staff", ip)
        throttle.failed("staff", ip)
    throttle.failed("other", "10.0.0.1")
    throttle.failed("other", "10.0.0.1")
    throttle.clear("staff")
    assert all(throttle.wait("staff", ip) is None for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.4"))
    assert throttle.wait("other", "10.0.0.1") is not None
