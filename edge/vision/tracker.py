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
other through ``class_groups``; a track's label is its most frequent class.
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
    ) -> None:
        self._iou = iou_threshold
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
        tracks = self._tracks
        n_t, n_d = len(tracks), len(detections)
        pairs: list[tuple[int, int]] = []
        if n_t and n_d:
            t_boxes = np.stack([tr.box for tr in tracks])
            t_groups = np.asarray([self._group(tr.class_id) for tr in tracks])
            d_groups = np.asarray([self._group(int(c)) for c in detections.class_ids])
            compatible = t_groups[:, None] == d_groups[None, :]
            iou = np.where(compatible, iou_matrix(t_boxes, detections.boxes), 0.0)
            # Centre distance relative to the track box diagonal: the fallback for fast movers.
            t_c = (t_boxes[:, :2] + t_boxes[:, 2:]) * 0.5
            d_c = (detections.boxes[:, :2] + detections.boxes[:, 2:]) * 0.5
            diag = np.hypot(t_boxes[:, 2] - t_boxes[:, 0], t_boxes[:, 3] - t_boxes[:, 1])
            dist = np.linalg.norm(t_c[:, None, :] - d_c[None, :, :], axis=2) / np.maximum(diag[:, None], 1.0)
            pairs = self._greedy(iou, iou >= self._iou)
            used_t = {p[0] for p in pairs}
            used_d = {p[1] for p in pairs}
            # Only similar sizes may match by distance (a far car appearing up the lane is not the
            # near car that just left). Negate the distance so "larger is better" like IoU.
            t_area = (t_boxes[:, 2] - t_boxes[:, 0]) * (t_boxes[:, 3] - t_boxes[:, 1])
            d_area = (detections.boxes[:, 2] - detections.boxes[:, 0]) * (detections.boxes[:, 3] - detections.boxes[:, 1])
            ratio = d_area[None, :] / np.maximum(t_area[:, None], 1.0)
            near = compatible & (dist <= self._centre_gate) & (ratio >= 0.5) & (ratio <= 2.0)
            for r in used_t:
                near[r, :] = False
            for c in used_d:
                near[:, c] = False
            pairs += self._greedy(-dist, near)
        matched_t = {p[0] for p in pairs}
        matched_d = {p[1] for p in pairs}
        for tr in tracks:
            tr.matched = False
        for ti, di in pairs:
            tr = tracks[ti]
            tr.prev_box = tr.box
            tr.box = detections.boxes[di].copy()
            tr.score = float(detections.scores[di])
            tr.votes[int(detections.class_ids[di])] += 1
            tr.class_id = tr.votes.most_common(1)[0][0]
            tr.last_seen = t
            tr.hits += 1
            tr.misses = 0
            tr.matched = True
        for index, tr in enumerate(tracks):
            if index not in matched_t:
                tr.misses += 1
        for di in range(n_d):
            if di in matched_d:
                continue
            cid = int(detections.class_ids[di])
            self._tracks.append(
                Track(self._next_id, detections.boxes[di].copy(), float(detections.scores[di]), cid, t, t,
                      votes=Counter({cid: 1}))
            )
            self._next_id += 1
        self._tracks = [
            tr for tr in self._tracks
            if not (tr.misses >= self._max_misses and t - tr.last_seen >= self._max_gap_s)
        ]
        return self.tracks

    @staticmethod
    def _greedy(score: NDArray[np.float64], allowed: NDArray[np.bool_]) -> list[tuple[int, int]]:
        """Best-first one-to-one assignment over allowed cells of ``score``."""
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
