"""Counters never report negative consumption: rollover, reset, replacement, jitter, restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge.normalise.counters import CounterAnomalyKind, CounterState, CounterTracker
from edge.records import Quality

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def feed(tracker: CounterTracker, values: list[float], step_s: float = 60.0) -> list:
    return [tracker.update(v, T0 + timedelta(seconds=i * step_s)) for i, v in enumerate(values)]


def test_plain_consumption() -> None:
    results = feed(CounterTracker(), [100.0, 100.5, 101.5])
    assert [r.total for r in results] == [100.0, 100.5, 101.5]
    assert [r.increment for r in results] == [0.0, 0.5, 1.0]
    assert all(r.quality is Quality.GOOD for r in results)


def test_decimal_display_rollover() -> None:
    results = feed(CounterTracker(), [99998.0, 99999.5, 0.7, 2.0])
    rolled = results[2]
    assert rolled.anomaly is not None and rolled.anomaly.kind is CounterAnomalyKind.ROLLOVER
    assert rolled.increment == pytest.approx(1.2)
    assert rolled.quality is Quality.GOOD
    assert results[3].total == pytest.approx(99998.0 + 1.5 + 1.2 + 1.3)


def test_explicit_register_rollover() -> None:
    tracker = CounterTracker(rollover=65536 * 0.01)  # uint16 x 0.01 kWh
    results = feed(tracker, [655.30, 0.10])
    assert results[1].anomaly.kind is CounterAnomalyKind.ROLLOVER
    assert results[1].increment == pytest.approx(655.36 - 655.30 + 0.10)


def test_meter_replacement_keeps_total_and_counts_nothing() -> None:
    results = feed(CounterTracker(), [5000.0, 5001.0, 2300.0, 2302.5])
    swap = results[2]
    assert swap.anomaly.kind is CounterAnomalyKind.REPLACEMENT
    assert swap.increment == 0.0 and swap.quality is Quality.UNCERTAIN
    assert swap.total == 5001.0
    assert results[3].total == pytest.approx(5003.5)  # consumption resumes from the new meter


def test_reset_to_zero_counts_what_the_new_register_shows() -> None:
    results = feed(CounterTracker(), [5000.0, 5001.0, 0.4, 1.0])
    assert results[2].anomaly.kind is CounterAnomalyKind.RESET
    assert results[2].increment == pytest.approx(0.4)
    assert results[3].total == pytest.approx(5001.0 + 0.4 + 0.6)


def test_small_decrease_is_held_not_negative() -> None:
    results = feed(CounterTracker(), [1000.0, 999.9995, 1000.0, 1000.2])
    assert results[1].anomaly.kind is CounterAnomalyKind.BACKWARDS
    assert [r.increment for r in results] == [0.0, 0.0, 0.0, pytest.approx(0.2)]
    assert [r.total for r in results][:3] == [1000.0, 1000.0, 1000.0]


def test_implausible_jump_is_a_swap_when_a_rate_is_known() -> None:
    tracker = CounterTracker(max_rate_per_s=0.01)  # at most 0.6 kWh a minute
    results = feed(tracker, [100.0, 100.3, 98000.0, 98000.4])
    assert results[2].anomaly.kind is CounterAnomalyKind.JUMP and results[2].increment == 0.0
    assert results[3].total == pytest.approx(100.7)


@pytest.mark.parametrize(
    "values",
    [[10, 9, 8, 7], [99999.0, 5.0, 99990.0, 3.0], [1e6, 0.0, 1e6, 0.0], [50.0, 49.0, 51.0, 12.0, 0.0, 80.0]],
)
def test_totals_never_decrease(values: list[float]) -> None:
    results = feed(CounterTracker(), [float(v) for v in values])
    totals = [r.total for r in results]
    assert totals == sorted(totals)
    assert all(r.increment >= 0 for r in results)


def test_nan_is_bad_and_leaves_state_alone() -> None:
    tracker = CounterTracker()
    feed(tracker, [10.0])
    bad = tracker.update(float("nan"), T0 + timedelta(minutes=1))
    assert bad.quality is Quality.BAD and bad.total == 10.0
    assert tracker.update(11.0, T0 + timedelta(minutes=2)).increment == 1.0


def test_restore_after_restart() -> None:
    first = CounterTracker()
    feed(first, [5000.0, 2000.0, 2010.0])  # replaced once: total 5010, raw 2010
    again = CounterTracker()
    again.restore(first.state)
    result = again.update(2015.0, T0 + timedelta(hours=1))
    assert result.total == pytest.approx(5015.0) and result.increment == pytest.approx(5.0)


def test_restore_from_a_stored_total_only() -> None:
    tracker = CounterTracker()
    tracker.restore(CounterState(last_raw=None, total=1234.0))
    assert tracker.update(1240.0, T0).increment == pytest.approx(6.0)
