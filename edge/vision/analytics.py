"""Zone analytics as pure, clock-injected state machines: tracks in, raise/clear decisions out.

They take the tracker's live tracks and the frame's monotonic time and return ``Decision``s; they
never read a clock, draw, or do I/O, so tests drive them with scripted tracks and times, and the
camera source turns decisions into events.

``FireLaneMonitor`` (one per fire_lane zone)::

    idle --(a vehicle stands in the zone >= dwell_s)------------------------> blocked   emits fire.lane_blocked
    blocked --(no vehicle standing >= min_presence_s, for hold_s)---------> idle      emits fire.lane_cleared

"Stands": a vehicle's dwell is the time its footprint has been in the zone *without moving away*
from where it stopped; moving more than ``MOVE_TOLERANCE`` of its box diagonal restarts the count.
That is what parking means, and it is what keeps traffic from raising alarms: a car driving
through never stands still for dwell_s, and neither does a tracker id handed from one passing car
to the next on a busy lane (each hand-over is a jump). A standing vehicle must also have been
detected in at least ``MIN_SEEN_SHARE`` of the analysed frames since it stopped: parked cars are
seen steadily, while an id that coasts and now and then latches onto whichever car passes the
same spot is not. One alarm per blocking episode: while
blocked, more parked vehicles do not raise again, and a track that has raised never raises again;
once blocked, passing traffic (standing for less than min_presence_s) does not keep it blocked.

``EbikeEntryMonitor`` (one per ebike_entry zone): a track whose anchor moves from the outward to
the inward side across the entry line is an entry; so is a track *appearing* inside the zone
(seen inside for ``confirm_frames`` analysed frames and never outside it: it came through a door
the camera cannot see, or was first detected only once inside). Without an entry line only the
second rule applies. Each track counts once, and a new track that overlaps an entry still present
(or gone less than ``rearm_s`` ago) is the same entry seen again after a tracker id switch, not a
new one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.config.cameras import AnalyticsConfig
from edge.vision.detections import Box, iou_matrix
from edge.vision.tracker import Track
from edge.vision.zones import Zone

LANE_BLOCKED = "fire.lane_blocked"
LANE_CLEARED = "fire.lane_cleared"
EBIKE_ENTRY = "fire.ebike_entry"
MOVE_TOLERANCE = 0.2  # share of a box's diagonal a parked vehicle may shift (detector jitter, doors)
MIN_SEEN_SHARE = 0.6  # share of analysed frames a standing vehicle must be detected in


@dataclass(frozen=True, slots=True)
class Decision:
    """What an analytic decided on one frame. ``box`` is the object that caused it (if any)."""

    code: str
    zone_id: str
    zone_name: str
    t: float
    track_id: int | None
    box: Box | None
    boxes: tuple[Box, ...]
    dwell_s: float | None = None
    blocked_s: float | None = None
    message: str = ""


def _relevant(tracks: list[Track], zone: Zone) -> list[Track]:
    wanted = set(zone.class_ids)
    return [tr for tr in tracks if tr.class_id in wanted]


class FireLaneMonitor:
    def __init__(self, zone: Zone, cfg: AnalyticsConfig, labels: tuple[str, ...]) -> None:
        self.zone = zone
        self.labels = labels
        self.dwell_s = zone.dwell_s or cfg.dwell_s
        self.hold_s = cfg.hold_s
        self.presence_s = min(cfg.min_presence_s, self.dwell_s)
        self.exit_grace_s = cfg.exit_grace_s
        self.blocked = False
        self._entered: dict[int, float] = {}
        self._last_inside: dict[int, float] = {}
        self._origin: dict[int, tuple[float, float]] = {}
        self._frames: dict[int, int] = {}  # analysed frames since the vehicle stopped
        self._seen: dict[int, int] = {}  # ...in which it was detected
        self._alarmed: set[int] = set()
        self._blocked_since = 0.0
        self._free_since: float | None = None

    def _forget(self, tid: int) -> None:
        self._entered.pop(tid, None)
        self._last_inside.pop(tid, None)
        self._origin.pop(tid, None)
        self._frames.pop(tid, None)
        self._seen.pop(tid, None)

    def dwell(self, t: float) -> dict[int, float]:
        """Seconds each tracked vehicle has been in the zone, by track id."""
        return {tid: t - since for tid, since in self._entered.items()}

    def update(self, tracks: list[Track], t: float) -> list[Decision]:
        live = {tr.id for tr in tracks}
        for tid in [tid for tid in self._entered if tid not in live]:
            self._forget(tid)
        for tid in self._entered:
            self._frames[tid] = self._frames.get(tid, 0) + 1
        vehicles = [tr for tr in _relevant(tracks, self.zone) if tr.matched]
        if vehicles:
            boxes = np.stack([tr.box for tr in vehicles])
            inside = self.zone.contains_boxes(boxes)
            points = self.zone.anchor_points(boxes)
            for tr, is_in, point in zip(vehicles, inside, points, strict=True):
                anchor = (float(point[0]), float(point[1]))
                if is_in:
                    origin = self._origin.get(tr.id)
                    diagonal = float(np.hypot(tr.box[2] - tr.box[0], tr.box[3] - tr.box[1]))
                    moved = origin is not None and np.hypot(anchor[0] - origin[0], anchor[1] - origin[1]) > (
                        MOVE_TOLERANCE * diagonal
                    )
                    if origin is None or moved:
                        self._entered[tr.id] = t
                        self._origin[tr.id] = anchor
                        self._frames[tr.id] = 1
                        self._seen[tr.id] = 0
                    self._seen[tr.id] += 1
                    self._last_inside[tr.id] = t
                elif tr.id in self._entered and t - self._last_inside[tr.id] > self.exit_grace_s:
                    self._forget(tr.id)
        dwell = self.dwell(t)
        by_id = {tr.id: tr for tr in tracks}
        in_zone = tuple(by_id[tid].to_box(self.labels) for tid in dwell if tid in by_id)
        if not self.blocked:
            candidates = [
                (d, tid) for tid, d in dwell.items()
                if d >= self.dwell_s and tid not in self._alarmed
                and self._seen[tid] >= MIN_SEEN_SHARE * self._frames[tid]
            ]
            if not candidates:
                return []
            longest, tid = max(candidates)
            self.blocked = True
            self._alarmed.add(tid)
            self._blocked_since = self._entered[tid]
            self._free_since = None
            box = by_id[tid].to_box(self.labels)
            return [Decision(
                LANE_BLOCKED, self.zone.id, self.zone.name, t, tid, box, in_zone, dwell_s=longest,
                message=f"{box.label} parked in fire lane {self.zone.name} for {longest:.0f} s",
            )]
        standing = [tid for tid, d in dwell.items() if d >= self.presence_s]
        if any(by_id[tid].matched for tid in standing if tid in by_id):
            self._free_since = None
            return []
        # Nobody standing is seen now. The lane has been free since the last sighting of a standing
        # vehicle (a track may coast unseen for a few frames before the tracker drops it).
        last_seen = max((self._last_inside[tid] for tid in standing), default=None)
        if last_seen is not None:
            self._free_since = last_seen
        elif self._free_since is None:
            self._free_since = t
        if t - self._free_since < self.hold_s:
            return []
        self.blocked = False
        blocked_s = self._free_since - self._blocked_since
        self._free_since = None
        return [Decision(
            LANE_CLEARED, self.zone.id, self.zone.name, t, None, None, in_zone, blocked_s=blocked_s,
            message=f"fire lane {self.zone.name} free again after {blocked_s:.0f} s blocked",
        )]


@dataclass(slots=True)
class _Entry:
    box: np.ndarray
    last_t: float


class EbikeEntryMonitor:
    def __init__(self, zone: Zone, cfg: AnalyticsConfig, labels: tuple[str, ...]) -> None:
        self.zone = zone
        self.labels = labels
        self.confirm_frames = cfg.ebike_confirm_frames
        self.rearm_s = cfg.ebike_rearm_s
        self._counted: set[int] = set()
        self._inside_frames: dict[int, int] = {}
        self._prev_anchor: dict[int, tuple[float, float]] = {}
        self._seen_outside: set[int] = set()
        self._recent: list[_Entry] = []
        self.entries = 0

    def update(self, tracks: list[Track], t: float) -> list[Decision]:
        live = {tr.id for tr in tracks}
        for state in (self._inside_frames, self._prev_anchor):
            for tid in [tid for tid in state if tid not in live]:
                del state[tid]
        self._seen_outside &= live
        bikes = _relevant(tracks, self.zone)
        seen = [tr for tr in bikes if tr.matched]
        if self._recent and seen:
            overlap = iou_matrix(np.stack([e.box for e in self._recent]), np.stack([tr.box for tr in seen]))
            for k, entry in enumerate(self._recent):
                if (overlap[k] >= 0.3).any():
                    entry.last_t = t
        self._recent = [e for e in self._recent if t - e.last_t <= self.rearm_s]
        if not seen:
            return []
        boxes = np.stack([tr.box for tr in seen])
        points = self.zone.anchor_points(boxes)
        inside = self.zone.contains_boxes(boxes)
        decisions: list[Decision] = []
        for tr, point, is_in in zip(seen, points, inside, strict=True):
            anchor = (float(point[0]), float(point[1]))
            if not is_in:
                self._seen_outside.add(tr.id)
            count = self._inside_frames.get(tr.id, 0) + 1 if is_in else 0
            self._inside_frames[tr.id] = count
            entered = count >= self.confirm_frames and tr.id not in self._seen_outside
            if self.zone.entry_line is not None:
                before = self._prev_anchor.get(tr.id)
                self._prev_anchor[tr.id] = anchor
                entered = entered or (before is not None and self.zone.entry_line.crossed_inward(before, anchor))
            if not entered or tr.id in self._counted:
                continue
            self._counted.add(tr.id)
            if self._recent and (iou_matrix(np.stack([e.box for e in self._recent]), tr.box[None]) >= 0.3).any():
                continue  # the same e-bike, re-identified by the tracker
            self._recent.append(_Entry(tr.box.copy(), t))
            self.entries += 1
            box = tr.to_box(self.labels)
            decisions.append(Decision(
                EBIKE_ENTRY, self.zone.id, self.zone.name, t, tr.id, box,
                tuple(o.to_box(self.labels) for o in seen),
                message=f"{box.label} entering {self.zone.name}",
            ))
        return decisions
