"""Detections as arrays (for vectorised work) and as named records (for everything else).

Inside the hot path a frame's detections stay a struct of NumPy arrays: decoding, NMS, zone tests
and IoU matching are all vectorised over them. Whatever leaves the vision stage (event data,
evidence labels) uses ``Box`` records with named fields, never positional tuples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class Box:
    """One detection in frame pixels (x1, y1 top-left; x2, y2 bottom-right, exclusive)."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    class_id: int
    label: str
    track_id: int | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "x1": round(self.x1, 1),
            "y1": round(self.y1, 1),
            "x2": round(self.x2, 1),
            "y2": round(self.y2, 1),
            "score": round(self.score, 3),
            "label": self.label,
        }
        if self.track_id is not None:
            out["track_id"] = self.track_id
        return out


@dataclass(frozen=True, slots=True)
class Detections:
    """N detections of one frame: ``boxes`` (N, 4) float32 xyxy pixels, ``scores`` (N,), ``class_ids`` (N,)."""

    boxes: NDArray[np.float32]
    scores: NDArray[np.float32]
    class_ids: NDArray[np.int64]
    labels: tuple[str, ...]  # the model's class names, indexed by class id

    @classmethod
    def empty(cls, labels: tuple[str, ...]) -> Detections:
        return cls(
            np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int64), labels
        )

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def select(self, mask: NDArray[np.bool_] | NDArray[np.int64]) -> Detections:
        return Detections(self.boxes[mask], self.scores[mask], self.class_ids[mask], self.labels)

    def of_classes(self, class_ids: tuple[int, ...]) -> Detections:
        return self.select(np.isin(self.class_ids, np.asarray(class_ids, dtype=np.int64)))

    def to_boxes(self) -> list[Box]:
        return [
            Box(float(b[0]), float(b[1]), float(b[2]), float(b[3]), float(s), int(c), self.labels[int(c)])
            for b, s, c in zip(self.boxes, self.scores, self.class_ids, strict=True)
        ]


def iou_matrix(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float32]:
    """IoU of every box in ``a`` (N, 4) against every box in ``b`` (M, 4): an (N, M) array."""
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), np.float32)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    iou: NDArray[np.float32] = (inter / np.maximum(union, 1e-9)).astype(np.float32)
    return iou
