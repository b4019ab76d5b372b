"""The one backoff (edge.backoff): steps, cap, each jitter's range, reset, and repeatable draws."""

from __future__ import annotations

import random

import pytest

from edge.backoff import Backoff, step_s


def test_steps_double_up_to_the_cap_and_stay_there() -> None:
    assert [step_s(n, 1.0, 60.0) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert step_s(10_000, 1.0, 60.0) == 60.0  # no overflow however long it failed
    assert step_s(2, 0.5, 100.0, factor=3.0) == 4.5
    with pytest.raises(ValueError, match="attempt must be >= 0"):
        step_s(-1, 1.0, 60.0)


def test_no_jitter_is_the_step_and_reset_starts_over() -> None:
    backoff = Backoff(0.05, 0.2)
    assert [backoff.next_delay() for _ in range(5)] == [0.05, 0.1, 0.2, 0.2, 0.2]
    assert backoff.attempt == 5
    backoff.reset()
    assert backoff.attempt == 0 and backoff.next_delay() == 0.05


def test_a_cap_below_the_first_step_caps_every_step() -> None:
    backoff = Backoff(1.0, 0.3, jitter="spread", rng=random.Random(1))
    assert all(0.24 <= backoff.next_delay() <= 0.36 for _ in range(20))


@pytest.mark.parametrize(("jitter", "low", "high"), [("full", 0.0, 1.0), ("equal", 0.5, 1.0), ("spread", 0.8, 1.2)])
def test_each_jitter_stays_in_its_range_and_really_varies(jitter: str, low: float, high: float) -> None:
    rng = random.Random(7)
    for attempt, step in [(0, 1.0), (1, 2.0), (3, 8.0), (6, 60.0), (40, 60.0)]:
        delays = []
        for _ in range(200):
            backoff = Backoff(1.0, 60.0, jitter=jitter, rng=rng)  # type: ignore[arg-type]
            backoff.attempt = attempt
            delays.append(backoff.next_delay())
        assert all(low * step <= d <= high * step for d in delays), (jitter, attempt)
        assert max(delays) - min(delays) > (high - low) * step / 2  # jittered, not a fixed step


def test_the_same_seed_draws_the_same_waits() -> None:
    def waits(seed: int) -> list[float]:
        backoff = Backoff(1.0, 60.0, jitter="full", rng=random.Random(seed))
        return [backoff.next_delay() for _ in range(10)]

    assert waits(3) == waits(3)
    assert waits(3) != waits(4)


def test_bad_settings_are_refused_with_the_value() -> None:
    with pytest.raises(ValueError, match="initial_s=-1"):
        Backoff(-1, 10)
    with pytest.raises(ValueError, match=r"factor must be >= 1, got 0\.5"):
        Backoff(1, 10, factor=0.5)
    with pytest.raises(ValueError, match="spread must be in"):
        Backoff(1, 10, jitter="spread", spread=1.5)
