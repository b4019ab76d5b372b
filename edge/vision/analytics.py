"""Zone analytics as pure, clock-injected state machines: tracks in, raise/clear decisions out.

They take the tracker's live tracks and the frame's monotonic time and return ``Decision``s; they
never read a clock, draw, or do I/O, so tests drive them with scripted tracks and times, and the
camera source turns decisions into events.

``FireLaneMonitor`` (one per fire_lane zone)::

    idle --(a vehicle's footprint stays in the zone >= dwell_s)--> blocked   emits fire.lane_blocked
    blocked --(no vehicle present >= min_presence_s for hold_s)--> idle      emits fire.lane_cleared

One alarm per blocking episode: while blocked, more parked vehicles do not raise again; a track
that has raised never raises again. A vehicle driving through never reaches dwell_s, and once the
lane is blocked, passing traffic (present for less than min_presence_s) does not keep it blocked.

``EbikeEntryMonitor`` (one per ebike_entry zone): with an entry line, a track whose anchor moves
from the outward to the inward side across the segment is an entry; without one, a track seen
inside for ``confirm_frames`` analysed frames is. Each track counts once, and a new track that
overlaps an entry still present (or gone less than ``rearm_s`` ago) is the same entry seen again
after a tracker id switch, not a new one.
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
        self._alarmed: set[int] = set()
        self._blocked_since = 0.0
        self._free_since: float | None = None

    def dwell(self, t: float) -> dict[int, float]:
        """Seconds each tracked vehicle has been in the zone, by track id."""
        return {tid: t - since for tid, since in self._entered.items()}

    def update(self, tracks: list[Track], t: float) -> list[Decision]:
        live = {tr.id for tr in tracks}
        for tid in [tid for tid in self._entered if tid not in live]:
            del self._entered[tid]
            del self._last_inside[tid]
        vehicles = [tr for tr in _relevant(tracks, self.zone) if tr.matched]
        if vehicles:
            inside = self.zone.contains_boxes(np.stack([tr.box for tr in vehicles]))
            for tr, is_in in zip(vehicles, inside, strict=True):
                if is_in:
                    self._entered.setdefault(tr.id, t)
                    self._last_inside[tr.id] = t
                elif tr.id in self._entered and t - self._last_inside[tr.id] > self.exit_grace_s:
                    del self._entered[tr.id]
                    del self._last_inside[tr.id]
        dwell = self.dwell(t)
        by_id = {tr.id: tr for tr in tracks}
        in_zone = tuple(by_id[tid].to_box(self.labels) for tid in dwell if tid in by_id)
        if not self.blocked:
            candidates = [(d, tid) for tid, d in dwell.items() if d >= self.dwell_s and tid not in self._alarmed]
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
        if any(d >= self.presence_s for d in dwell.values()):
            self._free_since = None
            return []
        if self._free_since is None:
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
        self._recent: list[_Entry] = []
        self.entries = 0

    def update(self, tracks: list[Track], t: float) -> list[Decision]:
        live = {tr.id for tr in tracks}
        for state in (self._inside_frames, self._prev_anchor):
            for tid in [tid for tid in state if tid not in live]:
                del state[tid]
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
            if self.zone.entry_line is not None:
                before = self._prev_anchor.get(tr.id)
                self._prev_anchor[tr.id] = anchor
                entered = before is not None and self.zone.entry_line.crossed_inward(before, anchor)
            else:
                count = self._inside_frames.get(tr.id, 0) + 1 if is_in else 0
                self._inside_frames[tr.id] = count
                entered = count >= self.confirm_frames
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
