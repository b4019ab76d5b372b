"""Dwell, hold and dedup of the zone analytics on scripted detections and times."""

from __future__ import annotations

from edge.vision.analytics import EBIKE_ENTRY, LANE_BLOCKED, LANE_CLEARED, EbikeEntryMonitor, FireLaneMonitor
from edge.vision.tracker import IouTracker
from tests.unit.vision.helpers import CAR, GROUPS, LABELS, MOTO, analytics, dets, square_zone

PARKED = ((20, 20, 60, 80), CAR)


class Lane:
    """A tracker plus a fire-lane monitor, fed scripted detections."""

    def __init__(self, **cfg: float) -> None:
        self.tracker = IouTracker(class_groups=GROUPS)
        self.monitor = FireLaneMonitor(square_zone(), analytics(**cfg), LABELS)
        self.log: list[tuple[float, str, float | None]] = []

    def step(self, t: float, *items) -> None:  # type: ignore[no-untyped-def]
        for d in self.monitor.update(self.tracker.update(dets(*items), t), t):
            self.log.append((t, d.code, d.dwell_s if d.code == LANE_BLOCKED else d.blocked_s))


def test_parked_car_raises_once_after_dwell_and_clears_after_hold() -> None:
    lane = Lane(dwell_s=120, hold_s=60)
    for t in range(0, 301, 10):
        lane.step(t, PARKED)
    for t in range(310, 400, 10):
        lane.step(t)
    # Last seen at 300: free from then, cleared 60 s later; blocked from 0 to 300.
    assert lane.log == [(120, LANE_BLOCKED, 120.0), (360, LANE_CLEARED, 300.0)]


def test_car_driving_through_raises_nothing() -> None:
    lane = Lane(dwell_s=5, hold_s=5)
    for step in range(30):  # 15 px per second across the zone and out
        x = -40 + 15 * step
        lane.step(float(step), ((x, 20, x + 40, 80), CAR))
    assert lane.log == []


def test_flaky_detection_and_second_car_do_not_raise_again() -> None:
    lane = Lane(dwell_s=60, hold_s=30)
    second = ((65, 30, 95, 90), CAR)
    for t in range(0, 200, 5):
        missed = t % 15 == 5  # the detector misses the parked car in one frame of three
        items = [] if missed else [PARKED]
        if t >= 100:
            items.append(second)  # a second car parks while the lane is already blocked
        lane.step(float(t), *items)
    for t in range(200, 260, 5):
        lane.step(float(t))
    assert [code for _, code, _ in lane.log] == [LANE_BLOCKED, LANE_CLEARED]
    assert lane.log[0][0] == 60.0 and lane.log[1][0] == 225.0  # both last seen at 195


def test_passing_traffic_does_not_hold_the_alarm_open() -> None:
    lane = Lane(dwell_s=30, hold_s=20, min_presence_s=10)
    for t in range(0, 60, 2):
        lane.step(float(t), PARKED)
    for step, t in enumerate(range(60, 100, 2)):  # the car has gone; smaller cars keep driving past
        x = -40 + 25 * (step % 6)
        lane.step(float(t), ((x, 60, x + 30, 98), CAR))
    assert [(t, code) for t, code, _ in lane.log] == [(30.0, LANE_BLOCKED), (78.0, LANE_CLEARED)]


def test_new_episode_raises_again() -> None:
    lane = Lane(dwell_s=20, hold_s=10)
    for t in range(0, 40, 5):
        lane.step(float(t), PARKED)
    for t in range(40, 60, 5):
        lane.step(float(t))
    for t in range(60, 100, 5):
        lane.step(float(t), ((22, 18, 62, 78), CAR))
    assert [(t, code) for t, code, _ in lane.log] == [(20.0, LANE_BLOCKED), (45.0, LANE_CLEARED), (80.0, LANE_BLOCKED)]


def test_rarely_seen_track_does_not_raise() -> None:
    """A vehicle detected in only a third of the frames (a shadow, a misfire) never counts as parked."""
    lane = Lane(dwell_s=20, hold_s=10)
    for t in range(0, 60):
        lane.step(float(t), *([PARKED] if t % 3 == 0 else []))
    assert lane.log == []


class Door:
    def __init__(self, line: bool = True, **cfg: float) -> None:
        self.tracker = IouTracker(class_groups=GROUPS)
        zone = square_zone("ebike_entry", ((100, 0), (100, 100)) if line else None, classes=(MOTO,))
        self.monitor = EbikeEntryMonitor(zone, analytics(**cfg), LABELS)
        self.log: list[tuple[float, int | None]] = []

    def step(self, t: float, *items) -> None:  # type: ignore[no-untyped-def]
        for d in self.monitor.update(self.tracker.update(dets(*items), t), t):
            assert d.code == EBIKE_ENTRY
            self.log.append((t, d.track_id))


def bike(x: float) -> tuple[tuple[float, float, float, float], int]:
    return ((x - 20, 40, x + 20, 90), MOTO)


def test_crossing_the_line_inward_counts_once_per_entry() -> None:
    door = Door(ebike_rearm_s=5)
    t = 0.0
    for x in range(200, 40, -20):  # rides in across x=100
        door.step(t, bike(x))
        t += 1
    for _ in range(5):  # stands inside
        door.step(t, bike(50))
        t += 1
    for x in range(60, 260, 25):  # rides out again: not an entry
        door.step(t, bike(x))
        t += 1
    for _ in range(10):
        door.step(t)
        t += 1
    for x in range(200, 40, -20):  # and in again
        door.step(t, bike(x))
        t += 1
    # x = 200, 180, ... reaches the line (x=100) at t=5 and is past it at t=6; the second ride-in
    # starts at t=31.
    assert [when for when, _ in door.log] == [6.0, 37.0]


def test_appearing_inside_counts_and_a_re_identified_bike_does_not() -> None:
    door = Door(line=False, ebike_confirm_frames=2, ebike_rearm_s=10)
    door.step(0.0, bike(50))
    door.step(1.0, bike(50))  # confirmed on the second frame
    for t in range(2, 10):  # the tracker loses it for a while
        door.step(float(t))
    door.step(10.0, bike(52))  # same bike, new track id: same entry
    door.step(11.0, bike(52))
    for t in range(12, 30):
        door.step(float(t))
    door.step(30.0, bike(50))  # gone for longer than rearm: a new entry
    door.step(31.0, bike(50))
    assert [when for when, _ in door.log] == [1.0, 31.0]


def test_two_bikes_entering_together_are_two_entries() -> None:
    door = Door(line=False)
    for t in (0.0, 1.0):
        door.step(t, ((5, 40, 35, 90), MOTO), ((60, 40, 95, 90), MOTO))
    assert len(door.log) == 2 and door.log[0][1] != door.log[1][1]


def test_cars_do_not_count_as_ebikes() -> None:
    door = Door(line=False)
    for t in range(5):
        door.step(float(t), ((20, 40, 60, 90), CAR))
    assert door.log == []
