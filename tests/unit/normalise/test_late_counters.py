"""Late counter readings (older than the last accepted one) never move or corrupt the running total."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge.normalise import Normaliser
from edge.normalise.counters import CounterAnomalyKind, CounterState, CounterTracker
from edge.records import Quality, Reading

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_late_reading_is_mapped_and_leaves_the_tracker_alone() -> None:
    tracker = CounterTracker()
    for i, raw in enumerate([100.0, 101.0, 102.0]):
        tracker.update(raw, at(60 * i))
    before = tracker.state
    late = tracker.update(100.5, at(30))  # a backfilled poll between the first two
    assert (late.total, late.increment, late.quality, late.anomaly) == (100.5, 0.0, Quality.GOOD, None)
    assert tracker.state == before
    after = tracker.update(103.0, at(180))
    assert after.total == pytest.approx(103.0) and after.increment == pytest.approx(1.0) and after.anomaly is None


def test_late_readings_map_onto_the_offset_of_their_own_epoch() -> None:
    tracker = CounterTracker()
    tracker.update(1000.0, at(0))
    tracker.update(1001.0, at(60))
    swapped = tracker.update(500.0, at(120))  # meter replaced: total held at 1001, offset now 501
    assert swapped.anomaly is not None and swapped.anomaly.kind is CounterAnomalyKind.REPLACEMENT
    tracker.update(501.0, at(180))
    before = tracker.state
    old_meter = tracker.update(1000.5, at(90))  # from the old meter, before the swap
    new_meter = tracker.update(500.5, at(150))  # from the new one, after it
    assert (old_meter.total, old_meter.quality, old_meter.anomaly) == (1000.5, Quality.GOOD, None)
    assert (new_meter.total, new_meter.quality, new_meter.anomaly) == (1001.5, Quality.GOOD, None)
    assert tracker.state == before
    assert tracker.update(502.0, at(240)).total == pytest.approx(1003.0)


def test_late_reading_that_fits_no_known_epoch_keeps_its_value_uncertain() -> None:
    tracker = CounterTracker()
    tracker.update(100.0, at(60))
    tracker.update(101.0, at(120))
    before = tracker.state
    too_early = tracker.update(99.0, at(0))  # before the first reading: no offset known then
    misfit = tracker.update(50.0, at(90))  # not within what the register read in that period
    for result, raw in ((too_early, 99.0), (misfit, 50.0)):
        assert (result.total, result.increment, result.quality, result.anomaly) == (raw, 0.0, Quality.UNCERTAIN, None)
    assert tracker.state == before


def test_after_a_restore_only_readings_since_the_saved_moment_can_be_mapped() -> None:
    tracker = CounterTracker()
    tracker.restore(CounterState(last_raw=200.0, total=5200.0, ts=at(100)))
    tracker.update(202.0, at(200))
    assert tracker.update(201.0, at(150)).total == pytest.approx(5201.0)  # offset 5000 held since the save
    before_save = tracker.update(199.0, at(50))
    assert before_save.total == 199.0 and before_save.quality is Quality.UNCERTAIN
    assert tracker.state == CounterState(last_raw=202.0, total=5202.0, ts=at(200))


def test_normaliser_passes_a_late_counter_through_without_an_event() -> None:
    normaliser = Normaliser()

    def energy(value: float, seconds: float) -> Reading:
        return Reading("m1", "energy_import", value, "kWh", at(seconds))

    normaliser.normalise([energy(100.0, 0), energy(101.0, 60), energy(102.0, 120)])
    states = normaliser.counter_states()
    late = normaliser.normalise_one(energy(100.5, 30))
    assert late.value == 100.5 and late.quality is Quality.GOOD and late.ts == at(30)
    unknown = normaliser.normalise_one(energy(99.0, -30))
    assert unknown.value == 99.0 and unknown.quality is Quality.UNCERTAIN
    assert normaliser.drain_events() == []  # neither is a meter replacement
    assert normaliser.counter_states() == states
    assert normaliser.normalise_one(energy(103.0, 180)).value == pytest.approx(103.0)
