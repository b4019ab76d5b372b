"""Zone geometry and the IoU tracker."""

from __future__ import annotations

import numpy as np

from edge.vision.tracker import IouTracker
from edge.vision.zones import points_in_polygon
from tests.unit.vision.helpers import CAR, GROUPS, MOTO, PERSON, TRUCK, dets, square_zone


def test_points_in_concave_polygon() -> None:
    # An L shape: the notch (75, 25) is outside.
    poly = np.asarray([(0, 0), (50, 0), (50, 50), (100, 50), (100, 100), (0, 100)], np.float32)
    pts = np.asarray([(25, 25), (75, 25), (75, 75), (150, 50), (-1, 10)], np.float32)
    assert points_in_polygon(pts, poly).tolist() == [True, False, True, False, False]


def test_zone_uses_bottom_centre_as_footprint() -> None:
    zone = square_zone()
    # A tall box whose top is outside but whose bottom-centre (50, 90) is inside, and the reverse.
    boxes = np.asarray([(40, -200, 60, 90), (40, 50, 60, 150)], np.float32)
    assert zone.contains_boxes(boxes).tolist() == [True, False]


def test_entry_line_direction_and_segment() -> None:
    zone = square_zone("ebike_entry", ((100, 0), (100, 100)), classes=(MOTO,))
    line = zone.entry_line
    assert line is not None
    assert line.side(np.asarray([(50, 50), (150, 50)], np.float32)).tolist() == [1, -1]
    assert line.crossed_inward((150, 50), (90, 50))
    assert not line.crossed_inward((90, 50), (150, 50))  # outward
    assert not line.crossed_inward((150, 150), (90, 150))  # beside the segment, not through it


def test_tracker_keeps_ids_and_merges_flickering_classes() -> None:
    tracker = IouTracker(class_groups=GROUPS)
    a = tracker.update(dets(((0, 0, 40, 40), CAR), ((100, 0, 120, 60), PERSON)), 0.0)
    ids = {t.class_id: t.id for t in a}
    b = tracker.update(dets(((5, 0, 45, 40), TRUCK), ((102, 0, 122, 60), PERSON)), 1.0)
    assert {t.id for t in b} == set(ids.values())
    car = next(t for t in b if t.id == ids[CAR])
    assert car.hits == 2 and car.class_id in (CAR, TRUCK)
    # A motorcycle where the person is: different group, new track.
    c = tracker.update(dets(((10, 0, 50, 40), CAR), ((102, 0, 122, 60), MOTO)), 2.0)
    assert len({t.id for t in c}) == 3


def test_tracker_follows_fast_mover_by_distance_but_not_a_different_size() -> None:
    tracker = IouTracker(class_groups=GROUPS)
    first = tracker.update(dets(((0, 0, 40, 40), CAR)), 0.0)[0].id
    # Moved 30 px: IoU 0.14 < 0.25, but within 0.75 of the diagonal -> same track.
    assert [t.id for t in tracker.update(dets(((30, 0, 70, 40), CAR)), 0.5) if t.matched] == [first]
    # Same place, a fifth of the size (IoU 0.2): not the same object.
    moved = [t for t in tracker.update(dets(((45, 15, 63, 33), CAR)), 1.0) if t.matched]
    assert moved and moved[0].id != first


def test_tracker_drops_after_misses_and_gap() -> None:
    tracker = IouTracker(max_misses=3, max_gap_s=6.0, class_groups=GROUPS)
    tid = tracker.update(dets(((0, 0, 40, 40), CAR)), 0.0)[0].id
    for t in (1.0, 2.0, 3.0):  # three misses but only 3 s: kept (a parked car missed at a heartbeat)
        assert [x.id for x in tracker.update(dets(), t)] == [tid]
    assert tracker.update(dets(), 6.5) == []


def test_a_merged_box_does_not_continue_a_parked_track() -> None:
    """Passing traffic merged with the parked car into one big 'truck' box: the car's track coasts."""
    tracker = IouTracker(class_groups=GROUPS)
    parked = tracker.update(dets(((150, 200, 250, 280), CAR)), 0.0)[0].id
    merged = tracker.update(dets(((40, 185, 260, 285), TRUCK)), 1.0)
    assert [t.id for t in merged if t.matched] != [parked]
    again = tracker.update(dets(((151, 200, 251, 280), CAR)), 2.0)
    assert parked in [t.id for t in again if t.matched]
    assert next(t for t in again if t.id == parked).detected_class_id == CAR
