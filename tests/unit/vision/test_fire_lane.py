"""Fire-lane occupancy: dwell, hold, one alarm per episode, on scripted detections and times."""

from __future__ import annotations

from collections import Counter

import numpy as np

from edge.vision.analytics import LANE_BLOCKED, LANE_CLEARED, Decision, FireLaneMonitor
from edge.vision.tracker import IouTracker, Track
from tests.unit.vision.helpers import BICYCLE, CAR, GROUPS, LABELS, MOTO, TRUCK, analytics, dets, square_zone

PARKED = ((20, 20, 60, 80), CAR)


class LaneRig:
    """A tracker plus a fire-lane monitor, fed scripted detections."""

    def __init__(self, size: float = 100, **cfg: float) -> None:
        self.tracker = IouTracker(class_groups=GROUPS)
        zone = square_zone(classes=(CAR, TRUCK, MOTO, BICYCLE), size=size)
        self.monitor = FireLaneMonitor(zone, analytics(**cfg), LABELS)
        self.log: list[tuple[float, str, float | None]] = []
        self.decisions: list[Decision] = []

    def step(self, t: float, *items) -> None:  # type: ignore[no-untyped-def]
        self.feed(self.tracker.update(dets(*items), t), t)

    def feed(self, tracks: list[Track], t: float) -> None:
        for d in self.monitor.update(tracks, t):
            self.decisions.append(d)
            self.log.append((t, d.code, d.dwell_s if d.code == LANE_BLOCKED else d.blocked_s))


def test_parked_car_raises_once_after_dwell_and_clears_after_hold() -> None:
    lane = LaneRig(dwell_s=120, hold_s=60)
    for t in range(0, 301, 10):
        lane.step(t, PARKED)
    for t in range(310, 400, 10):
        lane.step(t)
    # Last seen at 300: free from then, cleared 60 s later; blocked from 0 to 300.
    assert lane.log == [(120, LANE_BLOCKED, 120.0), (360, LANE_CLEARED, 300.0)]


def test_car_driving_through_raises_nothing() -> None:
    lane = LaneRig(dwell_s=5, hold_s=5)
    for step in range(30):  # 15 px per second across the zone and out
        x = -40 + 15 * step
        lane.step(float(step), ((x, 20, x + 40, 80), CAR))
    assert lane.log == []


def test_flaky_detection_and_second_car_do_not_raise_again() -> None:
    lane = LaneRig(dwell_s=60, hold_s=30)
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
    lane = LaneRig(dwell_s=30, hold_s=20, min_presence_s=10)
    for t in range(0, 60, 2):
        lane.step(float(t), PARKED)
    for step, t in enumerate(range(60, 100, 2)):  # the car has gone; smaller cars keep driving past
        x = -40 + 25 * (step % 6)
        lane.step(float(t), ((x, 60, x + 30, 98), CAR))
    assert [(t, code) for t, code, _ in lane.log] == [(30.0, LANE_BLOCKED), (78.0, LANE_CLEARED)]


def test_new_episode_raises_again() -> None:
    lane = LaneRig(dwell_s=20, hold_s=10)
    for t in range(0, 40, 5):
        lane.step(float(t), PARKED)
    for t in range(40, 60, 5):
        lane.step(float(t))
    for t in range(60, 100, 5):
        lane.step(float(t), ((22, 18, 62, 78), CAR))
    assert [(t, code) for t, code, _ in lane.log] == [(20.0, LANE_BLOCKED), (45.0, LANE_CLEARED), (80.0, LANE_BLOCKED)]


def test_rarely_seen_track_does_not_raise() -> None:
    """A vehicle detected in only a third of the frames (a shadow, a misfire) never counts as parked."""
    lane = LaneRig(dwell_s=20, hold_s=10)
    for t in range(0, 60):
        lane.step(float(t), *([PARKED] if t % 3 == 0 else []))
    assert lane.log == []


# -- occupancy, not track identity (issue 11, point 3) ------------------------------------------

STREET = 400  # a 400 x 400 px lane zone
CAR_AT = (150.0, 200.0, 250.0, 280.0)  # where the car parks


def passing(t: float, start: float, speed: float = 40.0) -> tuple[float, float, float, float]:
    """A car driving through the lane left to right, level with the parked one."""
    x = -100 + speed * (t - start)
    return (x, 190.0, x + 110, 285.0)


def test_passing_traffic_merging_with_the_parked_car_raises_once_on_time() -> None:
    """The held-out clip's failure: passing cars merge with the parked one into one 'truck' box.

    Every 25 s a car drives past in front of the parked one; while they overlap, the detector
    reports one merged box around both (and no separate box for the parked car), and sometimes only
    the passing car. The parked car's timer must run through all of it.
    """
    lane = LaneRig(size=STREET, dwell_s=120, hold_s=60)
    park, leave = 10.0, 200.0
    for t in np.arange(0.0, 300.0, 1.0):
        items: list[tuple[tuple[float, float, float, float], int]] = []
        parked = park <= t < leave
        passes = [s for s in np.arange(0.0, 300.0, 25.0) if 0 <= t - s <= 12]
        for start in passes:
            box = passing(t, start)
            overlap = min(box[2], CAR_AT[2]) - max(box[0], CAR_AT[0])
            if parked and overlap > 60:  # one merged box, the parked car not reported on its own
                items.append(((min(box[0], CAR_AT[0]), 185.0, max(box[2], CAR_AT[2]), 285.0), TRUCK))
                parked = False
            elif 0 < box[0] + 55 < STREET:
                items.append((box, CAR))
        if parked:
            items.append((CAR_AT, CAR))
        lane.step(float(t), *items)
    assert [(t, code) for t, code, _ in lane.log] == [(130.0, LANE_BLOCKED), (259.0, LANE_CLEARED)]
    blocked = lane.decisions[0]
    assert blocked.box is not None and blocked.box.label == "car"
    assert abs(blocked.box.x1 - CAR_AT[0]) < 1 and "小汽车" in blocked.message


def make_track(tid: int, box: tuple[float, float, float, float], cls: int, t: float) -> Track:
    return Track(tid, np.asarray(box, np.float32), 0.8, cls, t, t, votes=Counter({cls: 1}), detected_class_id=cls)


def test_track_id_switching_mid_episode_does_not_restart_the_timer() -> None:
    """The tracker hands the parked car a new id (and a new class) every 30 s: one alarm, on time."""
    lane = LaneRig(size=STREET, dwell_s=120, hold_s=60)
    for t in range(0, 181):
        tid = 1 + t // 30
        cls = CAR if (t // 30) % 2 == 0 else TRUCK
        jitter = 2.0 * ((t % 3) - 1)
        box = (CAR_AT[0] + jitter, CAR_AT[1], CAR_AT[2] + jitter, CAR_AT[3])
        lane.feed([make_track(tid, box, cls, float(t))], float(t))
    for t in range(181, 260):
        lane.feed([], float(t))
    assert [(t, code) for t, code, _ in lane.log] == [(120.0, LANE_BLOCKED), (240.0, LANE_CLEARED)]
    assert lane.log[1][2] == 180.0  # blocked from 0 to the last sighting at 180


def test_parked_two_wheeler_blocks_the_lane_and_the_alarm_says_what() -> None:
    lane = LaneRig(dwell_s=60, hold_s=30)
    for t in range(0, 100, 2):
        lane.step(float(t), ((30, 40, 50, 90), MOTO))
    assert [code for _, code, _ in lane.log] == [LANE_BLOCKED]
    decision = lane.decisions[0]
    assert decision.box is not None and decision.box.label == "motorcycle"
    assert "电动车" in decision.message and decision.dwell_s == 60.0


def test_a_hidden_car_that_is_gone_for_good_still_clears() -> None:
    """Hiding bridges occupancy_gap_s at most: a spot covered by traffic does not stay blocked forever."""
    lane = LaneRig(size=STREET, dwell_s=30, hold_s=20, occupancy_gap_s=15)
    for t in range(0, 50):
        lane.step(float(t), (CAR_AT, CAR))
    # The car has left, but a queue of vans now stands over its spot, each box covering it.
    for t in range(50, 120):
        x = 140 + (t % 4) * 2
        lane.step(float(t), ((x, 180, x + 130, 290), TRUCK))
    codes = [code for _, code, _ in lane.log]
    assert codes[0] == LANE_BLOCKED and len(codes) <= 2
