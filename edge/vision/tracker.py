"""A small IoU tracker: gives each object a stable id across analysed frames.

Why not SORT/ByteTrack: analysed frame rates are low (1-5 frames/s, and motion gating skips
static frames entirely), so a Kalman motion model has little to predict from; parked vehicles, the
case that matters most, barely move. Greedy IoU matching within compatible classes, with a
centre-distance fallback for objects that moved more than their own size between frames, is
enough and has no tuning beyond three numbers.

A track is dropped only when it has gone unmatched for ``max_misses`` analysed frames *and*
``max_gap_s`` seconds: counting frames alone would drop a parked car after one missed detection
at a 10 s heartbeat, counting seconds alone would keep ghosts alive at 5 frames/s.

Classes that flicker for the same object (car/truck/bus, motorcycle/bicycle) are matched to each
other through ``class_groups``; a track's label is its most frequent class, and ``detected_class_id``
is the class of the latest matched detection (the e-bike vote counts those, frame by frame).

A box much larger or smaller than a track's (``max_area_ratio``) never continues it, even at a good
IoU: when passing traffic merges with a parked car into one box (``truck [0,55,213,235]`` around a
car of a third of that area), handing that box to the parked car's track would teleport the track.
The parked car's track coasts for that frame instead and picks up its own box again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from edge.vision.detections import Box, Detections, iou_matrix


@dataclass(slots=True)
class Track:
    id: int
    box: NDArray[np.float32]
    score: float
    class_id: int
    first_seen: float
    last_seen: float
    hits: int = 1
    misses: int = 0
    matched: bool = True  # matched in the latest update
    votes: Counter[int] = field(default_factory=Counter)
    prev_box: NDArray[np.float32] | None = None  # box at the previous match, for line crossing
    detected_class_id: int = -1  # class of the latest matched detection; -1 until set

    def __post_init__(self) -> None:
        if self.detected_class_id < 0:
            self.detected_class_id = self.class_id

    def to_box(self, labels: tuple[str, ...]) -> Box:
        b = self.box
        return Box(float(b[0]), float(b[1]), float(b[2]), float(b[3]), self.score, self.class_id,
                   labels[self.class_id], self.id)


class IouTracker:
    def __init__(
        self,
        *,
        iou_threshold: float = 0.25,
        max_misses: int = 3,
        max_gap_s: float = 6.0,
        centre_gate: float = 0.75,
        class_groups: dict[int, int] | None = None,
        max_area_ratio: float = 2.5,
    ) -> None:
        self._iou = iou_threshold
        self._max_ratio = max_area_ratio
        self._max_misses = max_misses
        self._max_gap_s = max_gap_s
        self._centre_gate = centre_gate
        self._groups = class_groups or {}
        self._tracks: list[Track] = []
        self._next_id = 1

    @property
    def tracks(self) -> list[Track]:
        """Live tracks, matched or coasting."""
        return list(self._tracks)

    def _group(self, class_id: int) -> int:
        return self._groups.get(class_id, 1000 + class_id)

    def update(self, detections: Detections, t: float) -> list[Track]:
        """Match ``detections`` (seen at monotonic time ``t``) to tracks; returns the live tracks."""
        pairs = self._match(detections)
        matched_t = {p[0] for p in pairs}
        matched_d = {p[1] for p in pairs}
        for index, tr in enumerate(self._tracks):
            tr.matched = False
            if index not in matched_t:
                tr.misses += 1
        for ti, di in pairs:
            self._continue(self._tracks[ti], detections, di, t)
        for di in range(len(detections)):
            if di not in matched_d:
                self._spawn(detections, di, t)
        self._tracks = [
            tr for tr in self._tracks
            if not (tr.misses >= self._max_misses and t - tr.last_seen >= self._max_gap_s)
        ]
        return self.tracks

    def _match(self, detections: Detections) -> list[tuple[int, int]]:
        """(track index, detection index) pairs: by IoU first, then by centre distance for fast movers."""
        tracks = self._tracks
        if not tracks or not len(detections):
            return []
        t_boxes = np.stack([tr.box for tr in tracks])
        d_boxes = detections.boxes
        t_groups = np.asarray([self._group(tr.class_id) for tr in tracks])
        d_groups = np.asarray([self._group(int(c)) for c in detections.class_ids])
        compatible = t_groups[:, None] == d_groups[None, :]
        iou = np.where(compatible, iou_matrix(t_boxes, d_boxes), 0.0)
        t_area = (t_boxes[:, 2] - t_boxes[:, 0]) * (t_boxes[:, 3] - t_boxes[:, 1])
        d_area = (d_boxes[:, 2] - d_boxes[:, 0]) * (d_boxes[:, 3] - d_boxes[:, 1])
        ratio = d_area[None, :] / np.maximum(t_area[:, None], 1.0)
        similar = (ratio >= 1.0 / self._max_ratio) & (ratio <= self._max_ratio)
        pairs = greedy_assign(iou, (iou >= self._iou) & similar)
        # Centre distance relative to the track box diagonal: the fallback for fast movers. Only
        # similar sizes may match by distance (a far car appearing up the lane is not the near car
        # that just left). Negate the distance so "larger is better" like IoU.
        t_c = (t_boxes[:, :2] + t_boxes[:, 2:]) * 0.5
        d_c = (d_boxes[:, :2] + d_boxes[:, 2:]) * 0.5
        diag = np.hypot(t_boxes[:, 2] - t_boxes[:, 0], t_boxes[:, 3] - t_boxes[:, 1])
        dist = np.linalg.norm(t_c[:, None, :] - d_c[None, :, :], axis=2) / np.maximum(diag[:, None], 1.0)
        near = compatible & (dist <= self._centre_gate) & (ratio >= 0.5) & (ratio <= 2.0)
        for r, c in pairs:
            near[r, :] = False
            near[:, c] = False
        return pairs + greedy_assign(-dist, near)

    @staticmethod
    def _continue(tr: Track, detections: Detections, di: int, t: float) -> None:
        tr.prev_box = tr.box
        tr.box = detections.boxes[di].copy()
        tr.score = float(detections.scores[di])
        tr.detected_class_id = int(detections.class_ids[di])
        tr.votes[tr.detected_class_id] += 1
        tr.class_id = tr.votes.most_common(1)[0][0]
        tr.last_seen = t
        tr.hits += 1
        tr.misses = 0
        tr.matched = True

    def _spawn(self, detections: Detections, di: int, t: float) -> None:
        cid = int(detections.class_ids[di])
        self._tracks.append(Track(
            self._next_id, detections.boxes[di].copy(), float(detections.scores[di]), cid, t, t,
            votes=Counter({cid: 1}),
        ))
        self._next_id += 1


def greedy_assign(score: NDArray[np.float64], allowed: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Best-first one-to-one assignment over allowed cells of ``score``: (row, column) pairs."""
    rows, cols = np.nonzero(allowed)
    if rows.size == 0:
        return []
    order = np.argsort(-score[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        pairs.append((r, c))
    return pairs
