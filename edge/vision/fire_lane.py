"""Fire-lane blocking from zone occupancy: is something standing in the lane, and for how long?

The timer belongs to a *spot in the lane*, not to a tracker id. Track ids are fragile exactly
where it matters: passing traffic merges with a parked car into one box, the tracker hands that box
to the parked car's track, the track "moves", and a timer keyed on the track restarts (held-out
clip: restarts at 79, 117, 146 and 155 s, so a car standing 150 s never alarmed). An ``Occupant``
is an object standing at one place in the zone:

* **sighted** when a detection of the zone's classes overlaps its reference box (the box where it
  was first seen) at IoU >= ``SAME_SPOT_IOU``, whatever that detection's track id or class;
* **hidden** when it is not sighted but a detection covers at least ``HIDDEN_COVER`` of its box (a
  van passing in front of it, or a merged box around both): the lane is still occupied, yet the
  frame is no evidence that it stands there, so it counts against its seen share;
* **missed** otherwise (detector recall is not 1).

An occupant seen again after more missed frames in a row than it had sightings before them (a car
that drove over this spot a few seconds before another parked there) starts its time afresh. An
occupant is gone once it has been missed for ``track_max_misses`` analysed frames *and*
``exit_grace_s`` seconds, or has gone unsighted (hidden or missed) for ``occupancy_gap_s``: hidden
frames bridge a merge or a passing van, but busy traffic cannot keep a spot alive forever. A car
creeping along leaves its reference box and becomes a new occupant further on, so traffic never
accumulates dwell; a passing car makes its own short-lived occupant and never restarts a parked
one's timer.

State machine (one ``FireLaneMonitor`` per fire_lane zone)::

    idle --(an occupant present for >= dwell_s, sighted in >= MIN_SEEN_SHARE of frames)--> blocked
            emits fire.lane_blocked, once per episode
    blocked --(no occupant that has stood >= min_presence_s sighted, for hold_s)--> idle
            emits fire.lane_cleared

Parked vehicles and parked two-wheelers both count (004 8.3.5 b) "电瓶车违停、堵塞"), and the alarm
names what is parked (``Decision.box.label``, the occupant's most frequent class).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from edge.config.cameras import AnalyticsConfig
from edge.vision.decisions import LANE_BLOCKED, LANE_CLEARED, Decision
from edge.vision.detections import Box, iou_matrix
from edge.vision.tracker import Track, greedy_assign
from edge.vision.zones import Zone

SAME_SPOT_IOU = 0.5  # a detection this close to an occupant's reference box is that occupant
HIDDEN_COVER = 0.7  # share of an occupant's box another detection must cover to hide it
MIN_SEEN_SHARE = 0.6  # share of analysed frames an occupant must be sighted in to raise


@dataclass(slots=True)
class Occupant:
    """One object standing at one spot of the zone, whatever the tracker calls it."""

    reference: NDArray[np.float32]  # box where it was first seen standing: the spot
    since: float  # monotonic time of the first sighting
    last_sighted: float
    box: NDArray[np.float32]  # latest sighted box (what the evidence draws)
    track_id: int
    score: float
    classes: Counter[int] = field(default_factory=Counter)
    frames: int = 1  # analysed frames since ``since``
    sightings: int = 1
    misses: int = 0  # consecutive frames neither sighted nor hidden
    alarmed: bool = False
    present: bool = True  # sighted or hidden on the latest frame

    @classmethod
    def first_seen(cls, track: Track, t: float) -> Occupant:
        return cls(track.box.copy(), t, t, track.box.copy(), track.id, track.score,
                   Counter({track.detected_class_id: 1}))

    @property
    def class_id(self) -> int:
        return self.classes.most_common(1)[0][0]

    @property
    def seen_share(self) -> float:
        return self.sightings / self.frames

    @property
    def stood_s(self) -> float:
        """How long it has demonstrably stood there: first to latest sighting."""
        return self.last_sighted - self.since

    def sighted(self, track: Track, t: float) -> None:
        if self.misses > self.sightings:
            # Seen again after a gap longer than all it was seen before (a car that passed this
            # spot a few seconds before another parked here): the spot's time starts now.
            self.since, self.frames, self.sightings = t, 0, 0
            self.reference = track.box.copy()
            self.classes.clear()
        self.frames += 1
        self.sightings += 1
        self.misses = 0
        self.last_sighted = t
        self.box = track.box.copy()
        self.track_id = track.id
        self.score = track.score
        self.classes[track.detected_class_id] += 1
        self.present = True

    def unsighted(self, hidden: bool) -> None:
        self.frames += 1
        self.present = hidden
        if not hidden:
            self.misses += 1

    def to_box(self, labels: tuple[str, ...]) -> Box:
        b = self.box
        cid = self.class_id
        return Box(float(b[0]), float(b[1]), float(b[2]), float(b[3]), self.score, cid, labels[cid], self.track_id)


class FireLaneMonitor:
    """Occupancy of one fire_lane zone; ``update`` once per analysed frame."""

    def __init__(self, zone: Zone, cfg: AnalyticsConfig, labels: tuple[str, ...]) -> None:
        self.zone = zone
        self.labels = labels
        self.dwell_s = zone.dwell_s or cfg.dwell_s
        self.hold_s = cfg.hold_s
        self.presence_s = min(cfg.min_presence_s, self.dwell_s)
        self.grace_s = cfg.exit_grace_s
        self.gap_s = cfg.occupancy_gap_s
        self.max_misses = cfg.track_max_misses
        self.blocked = False
        self.occupants: list[Occupant] = []
        self._blocked_since = 0.0
        self._last_standing = 0.0  # latest sighting of an occupant that stood >= presence_s

    def dwell(self, t: float) -> list[float]:
        """Seconds each present occupant has stood in the zone."""
        return [t - o.since for o in self.occupants]

    def update(self, tracks: list[Track], t: float) -> list[Decision]:
        seen = [tr for tr in tracks if tr.matched and tr.class_id in self.zone.class_ids]
        inside = self._inside(seen)
        self._observe(seen, inside, t)
        self._forget_gone(t)
        if not self.blocked:
            return self._maybe_raise(t)
        return self._maybe_clear(t)

    # -- steps -----------------------------------------------------------------------------------

    def _inside(self, seen: list[Track]) -> list[Track]:
        if not seen:
            return []
        mask = self.zone.contains_boxes(np.stack([tr.box for tr in seen]))
        return [tr for tr, is_in in zip(seen, mask, strict=True) if is_in]

    def _observe(self, seen: list[Track], inside: list[Track], t: float) -> None:
        """Sight, hide or miss every occupant; detections standing nowhere known become occupants."""
        occupants = self.occupants
        pairs: list[tuple[int, int]] = []
        if occupants and inside:
            refs = np.stack([o.reference for o in occupants])
            iou = iou_matrix(refs, np.stack([tr.box for tr in inside]))
            pairs = greedy_assign(iou.astype(np.float64), iou >= SAME_SPOT_IOU)
        for oi, di in pairs:
            occupants[oi].sighted(inside[di], t)
        matched_o = {oi for oi, _ in pairs}
        others = [o for k, o in enumerate(occupants) if k not in matched_o]
        hidden = self._hidden([o.reference for o in others], seen)
        for occupant, is_hidden in zip(others, hidden, strict=True):
            occupant.unsighted(bool(is_hidden))
        matched_d = {di for _, di in pairs}
        occupants.extend(Occupant.first_seen(tr, t) for k, tr in enumerate(inside) if k not in matched_d)

    @staticmethod
    def _hidden(references: list[NDArray[np.float32]], seen: list[Track]) -> NDArray[np.bool_]:
        """For each reference box: does some detection cover at least ``HIDDEN_COVER`` of it?"""
        if not references or not seen:
            return np.zeros((len(references),), bool)
        a = np.stack(references)
        b = np.stack([tr.box for tr in seen])
        ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
        iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
        area = np.maximum((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), 1e-9)
        cover = (ix * iy) / area[:, None]
        return np.asarray((cover >= HIDDEN_COVER).any(axis=1))

    def _forget_gone(self, t: float) -> None:
        def gone(o: Occupant) -> bool:
            unseen = t - o.last_sighted
            return (o.misses >= self.max_misses and unseen >= self.grace_s) or unseen > self.gap_s

        self.occupants = [o for o in self.occupants if not gone(o)]

    def _maybe_raise(self, t: float) -> list[Decision]:
        candidates = [
            o for o in self.occupants
            if o.present and not o.alarmed and t - o.since >= self.dwell_s and o.seen_share >= MIN_SEEN_SHARE
        ]
        if not candidates:
            return []
        first = min(candidates, key=lambda o: o.since)
        first.alarmed = True
        self.blocked = True
        self._blocked_since = first.since
        self._last_standing = t
        box = first.to_box(self.labels)
        dwell = t - first.since
        return [Decision(
            LANE_BLOCKED, self.zone.id, self.zone.name, t, first.track_id, box, self._boxes(), dwell_s=dwell,
        )]

    def _maybe_clear(self, t: float) -> list[Decision]:
        # The lane is free since the last sighting of something that stood there; passing traffic,
        # which never stands min_presence_s, does not hold it.
        standing = [o.last_sighted for o in self.occupants if o.stood_s >= self.presence_s]
        self._last_standing = max([self._last_standing, *standing])
        if self._last_standing == t or t - self._last_standing < self.hold_s:
            return []
        self.blocked = False
        blocked_s = self._last_standing - self._blocked_since
        return [Decision(
            LANE_CLEARED, self.zone.id, self.zone.name, t, None, None, self._boxes(), blocked_s=blocked_s,
        )]

    def _boxes(self) -> tuple[Box, ...]:
        return tuple(o.to_box(self.labels) for o in self.occupants if o.present)
