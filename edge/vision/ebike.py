"""E-bike entries staff can trust: a line crossing or an appearance, confirmed by a vote.

One ``EbikeEntryMonitor`` per ebike_entry zone. An object *enters* when its anchor crosses the
entry line from the outward to the inward side, or when it appears inside the zone without ever
having been seen outside it (it came through a door the camera cannot see, or was first detected
only once inside). Without an entry line only the second rule applies.

An entry is raised only once the object's own detections agree that it is an e-bike, counted over
the last ``ebike_vote_frames`` analysed frames (a per-frame recall of 0.5-0.7 is normal for a small
detector on a bike in a doorway; a vote over a short window still catches every real entry, while a
single misfire does not raise). Per frame, the object's detected class votes:

* ``ebike``: one of the zone's e-bike classes (a bicycle too where the installer set
  ``bicycles_are_ebikes`` for that zone: a COCO model cannot tell a pedal bicycle from an e-bike);
* ``bicycle``: a bicycle where bicycles are not e-bikes;
* ``negative``: a hard negative (stroller, wheelchair, shopping trolley, mobility scooter, when the
  model has such classes), as the object's own class or as a detection overlapping it.

It is an entry when ``ebike`` votes reach ``ebike_confirm_frames``, are at least the ``bicycle``
votes, and hard negatives were not seen in half as many frames or more. A crossing waits up to one
window for its votes. Objects already inside when the monitor starts (the gateway restarted with an
e-bike parked in the lobby) are residents, not entries; they and counted entries block a new track
that overlaps them (IoU >= ``SAME_OBJECT_IOU``, present or gone less than ``ebike_rearm_s`` ago),
which is the same object after a tracker id switch. Each track counts at most once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from edge.config.cameras import AnalyticsConfig
from edge.vision.decisions import EBIKE_ENTRY, Decision
from edge.vision.detections import iou_matrix
from edge.vision.tracker import Track
from edge.vision.zones import Zone

SAME_OBJECT_IOU = 0.3
EBIKE, BICYCLE, NEGATIVE, MISSED = "ebike", "bicycle", "negative", ""


@dataclass(frozen=True, slots=True)
class EbikeClasses:
    """Class ids that vote for an e-bike, for a pedal bicycle, and against (hard negatives)."""

    ebike: frozenset[int]
    bicycle: frozenset[int] = frozenset()
    negative: frozenset[int] = frozenset()

    @property
    def watched(self) -> frozenset[int]:
        return self.ebike | self.bicycle | self.negative

    def vote(self, class_id: int) -> str:
        if class_id in self.ebike:
            return EBIKE
        if class_id in self.bicycle:
            return BICYCLE
        return NEGATIVE if class_id in self.negative else MISSED


@dataclass(slots=True)
class Candidate:
    """What the monitor knows about one track: its votes, where it has been, whether it counted."""

    track_id: int
    votes: deque[str]
    near_negative: deque[bool]
    inside_frames: int = 0
    seen_outside: bool = False
    prev_anchor: tuple[float, float] | None = None
    crossed_frame: int | None = None
    resident: bool = False
    counted: bool = False

    def tally(self) -> tuple[int, int, int]:
        """(e-bike, bicycle, hard-negative) votes in the window."""
        negative = sum(1 for v, near in zip(self.votes, self.near_negative, strict=True) if v == NEGATIVE or near)
        return self.votes.count(EBIKE), self.votes.count(BICYCLE), negative


@dataclass(slots=True)
class _Seen:
    """A counted entry or a resident: its box blocks re-identified tracks until ``last_t + rearm_s``."""

    box: NDArray[np.float32]
    last_t: float


@dataclass(slots=True)
class _Frame:
    """One analysed frame's view of the zone: matched watched tracks, where they are."""

    seen: list[Track] = field(default_factory=list)
    inside: dict[int, bool] = field(default_factory=dict)
    anchors: dict[int, tuple[float, float]] = field(default_factory=dict)
    negatives: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 4), np.float32))


class EbikeEntryMonitor:
    def __init__(
        self, zone: Zone, cfg: AnalyticsConfig, labels: tuple[str, ...], classes: EbikeClasses | None = None,
    ) -> None:
        self.zone = zone
        self.labels = labels
        self.classes = classes or EbikeClasses(frozenset(zone.class_ids))
        self.window = cfg.ebike_vote_frames
        self.confirm = cfg.ebike_confirm_frames
        self.rearm_s = cfg.ebike_rearm_s
        self.entries = 0
        self._frame_no = 0
        self._candidates: dict[int, Candidate] = {}
        self._blockers: list[_Seen] = []

    def update(self, tracks: list[Track], t: float) -> list[Decision]:
        self._frame_no += 1
        frame = self._look(tracks)
        self._refresh_blockers(frame.seen, t)
        self._vote(tracks, frame)
        decisions: list[Decision] = []
        for tr in frame.seen:
            candidate = self._candidates[tr.id]
            self._move(candidate, tr, frame)
            if self._enters(candidate) and not candidate.counted:
                candidate.counted = True
                if not self._blocked(tr.box):
                    decisions.append(self._entry(tr, frame, t))
        return decisions

    @property
    def starting(self) -> bool:
        """The first window of frames: what is inside now was there before the gateway looked."""
        return self._frame_no <= self.window

    # -- steps -----------------------------------------------------------------------------------

    def _look(self, tracks: list[Track]) -> _Frame:
        watched = self.classes.watched
        seen = [tr for tr in tracks if tr.matched and tr.class_id in watched]
        frame = _Frame(seen)
        if seen:
            boxes = np.stack([tr.box for tr in seen])
            for tr, is_in, point in zip(seen, self.zone.contains_boxes(boxes), self.zone.anchor_points(boxes),
                                        strict=True):
                frame.inside[tr.id] = bool(is_in)
                frame.anchors[tr.id] = (float(point[0]), float(point[1]))
            negatives = [tr.box for tr in seen if tr.detected_class_id in self.classes.negative]
            if negatives:
                frame.negatives = np.stack(negatives)
        return frame

    def _refresh_blockers(self, seen: list[Track], t: float) -> None:
        if self._blockers and seen:
            overlap = iou_matrix(np.stack([b.box for b in self._blockers]), np.stack([tr.box for tr in seen]))
            for k, blocker in enumerate(self._blockers):
                if (overlap[k] >= SAME_OBJECT_IOU).any():
                    blocker.last_t = t
        self._blockers = [b for b in self._blockers if t - b.last_t <= self.rearm_s]

    def _vote(self, tracks: list[Track], frame: _Frame) -> None:
        """Append this frame's vote to every live watched track's window; forget dropped tracks."""
        live = {tr.id for tr in tracks}
        self._candidates = {tid: c for tid, c in self._candidates.items() if tid in live}
        near = iou_matrix(np.stack([tr.box for tr in frame.seen]), frame.negatives) if frame.seen else None
        seen_index = {tr.id: k for k, tr in enumerate(frame.seen)}
        for tr in tracks:
            if tr.class_id not in self.classes.watched:
                continue
            candidate = self._candidates.get(tr.id)
            if candidate is None:
                candidate = Candidate(tr.id, deque(maxlen=self.window), deque(maxlen=self.window))
                self._candidates[tr.id] = candidate
            k = seen_index.get(tr.id)
            candidate.votes.append(self.classes.vote(tr.detected_class_id) if k is not None else MISSED)
            candidate.near_negative.append(
                k is not None and near is not None and bool((near[k] >= SAME_OBJECT_IOU).any())
            )

    def _move(self, candidate: Candidate, tr: Track, frame: _Frame) -> None:
        """Where the track is now: inside or out, and whether it just crossed the entry line inward."""
        anchor = frame.anchors[tr.id]
        if frame.inside[tr.id]:
            if candidate.inside_frames == 0 and not candidate.seen_outside and self.starting:
                candidate.resident = True
                self._blockers.append(_Seen(tr.box.copy(), tr.last_seen))
            candidate.inside_frames += 1
        else:
            candidate.seen_outside = True
            candidate.resident = False
        line = self.zone.entry_line
        if line is not None:
            before, candidate.prev_anchor = candidate.prev_anchor, anchor
            if before is not None and line.crossed_inward(before, anchor):
                candidate.crossed_frame = self._frame_no

    def _enters(self, c: Candidate) -> bool:
        crossed = c.crossed_frame is not None and self._frame_no - c.crossed_frame < self.window
        appeared = c.inside_frames > 0 and not c.seen_outside and not c.resident
        if not (crossed or appeared):
            return False
        ebike, bicycle, negative = c.tally()
        return ebike >= self.confirm and ebike >= bicycle and not (negative and 2 * negative >= ebike)

    def _blocked(self, box: NDArray[np.float32]) -> bool:
        """A new track on a counted entry or a resident is that object re-identified, not a new entry."""
        if not self._blockers:
            return False
        return bool((iou_matrix(np.stack([b.box for b in self._blockers]), box[None]) >= SAME_OBJECT_IOU).any())

    def _entry(self, tr: Track, frame: _Frame, t: float) -> Decision:
        self._blockers.append(_Seen(tr.box.copy(), t))
        self.entries += 1
        box = tr.to_box(self.labels)
        return Decision(
            EBIKE_ENTRY, self.zone.id, self.zone.name, t, tr.id, box,
            tuple(o.to_box(self.labels) for o in frame.seen),
        )
