"""Output decoders and class-aware NMS, vectorised in NumPy.

The card's ``output.decoder`` picks the layout (``DECODERS``): ``yolox``, ``yolov5`` or ``yolov8``,
so a site can bring a detector trained elsewhere with nothing but a card. Every decoder returns
boxes in model-input pixels; the detector maps them back to the frame.

YOLOX output layout (``[1, A, 5 + C]``), one row per anchor point of the 52x52, 26x26 and 13x13
grids (strides 8, 16, 32, in that order, for a 416 px input)::

    column:   0    1    2       3       4       5 .. 5+C-1
              x    y    log w   log h   obj     class scores

    cx = (x + grid_x) * stride      w = exp(log w) * stride
    cy = (y + grid_y) * stride      h = exp(log h) * stride
    score = obj * max(class score), class = argmax(class score)

The grid and stride columns are precomputed once per input size, so a frame's decode is a few
array operations. Rows whose objectness is below the score threshold are dropped first (a score
can never exceed its objectness), which leaves a few dozen rows out of 3,549 on a typical frame.

YOLOv5 layout (``[1, N, 5 + C]``, N = 3 anchors per cell of every grid; the export already decodes
the anchors, so rows are in model-input pixels)::

    column:   0    1    2    3    4      5 .. 5+C-1
              cx   cy   w    h    obj    class scores        score = obj * max(class score)

YOLOv8 layout (``[1, 4 + C, N]``: one *column* per anchor point, no objectness; some exports
transpose it to ``[1, N, 4 + C]``, which is recognised by the shape)::

    row:      0    1    2    3    4 .. 4+C-1
              cx   cy   w    h    class scores                score = max(class score)

``scores_activated: false`` on the card applies a sigmoid to objectness and class scores first.
Like YOLOX, rows whose best possible score is below the threshold are dropped before any box is
built.

NMS is greedy and class-aware: boxes of different classes never suppress each other. It uses
the coordinate-offset trick (each class's boxes are shifted by ``class_id * (max_coord + 1)``, so
boxes of different classes cannot overlap) and one vectorised IoU row per kept box.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.registry import ModelCard

FloatArray = NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class RawDetections:
    """Decoded boxes in model-input pixels, before NMS."""

    boxes: FloatArray  # (N, 4) xyxy
    scores: FloatArray  # (N,)
    class_ids: NDArray[np.int64]  # (N,)


class YoloxDecoder:
    """Decodes a YOLOX head (see the module docstring) for one input size."""

    def __init__(self, card: ModelCard) -> None:
        width, height = card.input.width, card.input.height
        grids: list[FloatArray] = []
        strides: list[FloatArray] = []
        for stride in card.output.strides:
            gw, gh = width // stride, height // stride
            gx, gy = np.meshgrid(np.arange(gw, dtype=np.float32), np.arange(gh, dtype=np.float32))
            grids.append(np.stack([gx.ravel(), gy.ravel()], axis=1))
            strides.append(np.full((gw * gh, 1), stride, np.float32))
        self._grid = np.concatenate(grids)
        self._stride = np.concatenate(strides)
        self._activated = card.output.scores_activated
        self._num_classes = len(card.classes)

    @property
    def anchors(self) -> int:
        return int(self._grid.shape[0])

    def __call__(self, output: FloatArray, score_threshold: float) -> RawDetections:
        raw = output.reshape(-1, output.shape[-1])
        if raw.shape[0] != self._grid.shape[0] or raw.shape[1] != 5 + self._num_classes:
            raise ValueError(
                f"YOLOX output has shape {tuple(output.shape)}, expected "
                f"[1, {self._grid.shape[0]}, {5 + self._num_classes}] for this card"
            )
        if not self._activated:
            raw = raw.copy()
            raw[:, 4:] = 1.0 / (1.0 + np.exp(-raw[:, 4:]))
        keep = np.flatnonzero(raw[:, 4] >= score_threshold)
        sub = raw[keep]
        class_scores = sub[:, 5:] * sub[:, 4:5]
        class_ids = class_scores.argmax(axis=1)
        scores = class_scores[np.arange(class_ids.shape[0]), class_ids]
        good = scores >= score_threshold
        sub, class_ids, scores, keep = sub[good], class_ids[good], scores[good], keep[good]
        stride = self._stride[keep]
        centre = (sub[:, 0:2] + self._grid[keep]) * stride
        half = np.exp(sub[:, 2:4]) * stride * 0.5
        boxes = np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)
        return RawDetections(boxes, scores.astype(np.float32), class_ids.astype(np.int64))


def _sigmoid(x: FloatArray) -> FloatArray:
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def _from_centres(centres: FloatArray, class_scores: FloatArray, score_threshold: float) -> RawDetections:
    """Best class per row, rows at or above the threshold, (cx, cy, w, h) -> xyxy."""
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(class_ids.shape[0]), class_ids]
    good = scores >= score_threshold
    c = centres[good]
    half = c[:, 2:4] * 0.5
    boxes = np.concatenate([c[:, 0:2] - half, c[:, 0:2] + half], axis=1).astype(np.float32)
    return RawDetections(boxes, scores[good].astype(np.float32), class_ids[good].astype(np.int64))


class Yolov5Decoder:
    """Decodes a YOLOv5-style head (``[1, N, 5 + C]``, anchors already applied; see the module docstring)."""

    def __init__(self, card: ModelCard) -> None:
        self._name = card.name
        self._activated = card.output.scores_activated
        self._num_classes = len(card.classes)

    def __call__(self, output: FloatArray, score_threshold: float) -> RawDetections:
        width = 5 + self._num_classes
        if output.ndim != 3 or output.shape[0] != 1 or output.shape[2] != width:
            raise ValueError(
                f"model {self._name!r}: YOLOv5 output has shape {tuple(output.shape)}, expected [1, N, {width}] "
                f"for {self._num_classes} classes"
            )
        raw = output[0]
        if not self._activated:
            raw = np.concatenate([raw[:, :4], _sigmoid(raw[:, 4:])], axis=1)
        sub = raw[raw[:, 4] >= score_threshold]
        return _from_centres(sub[:, :4], sub[:, 5:] * sub[:, 4:5], score_threshold)


class Yolov8Decoder:
    """Decodes a YOLOv8-style head (``[1, 4 + C, N]`` or its transpose; see the module docstring)."""

    def __init__(self, card: ModelCard) -> None:
        self._name = card.name
        self._activated = card.output.scores_activated
        self._num_classes = len(card.classes)

    def __call__(self, output: FloatArray, score_threshold: float) -> RawDetections:
        width = 4 + self._num_classes
        if output.ndim != 3 or output.shape[0] != 1 or width not in output.shape[1:]:
            raise ValueError(
                f"model {self._name!r}: YOLOv8 output has shape {tuple(output.shape)}, expected [1, {width}, N] "
                f"for {self._num_classes} classes"
            )
        # [1, 4 + C, N] is the layout as exported; [1, N, 4 + C] only when the first axis is not 4 + C.
        rows = output[0].T if output.shape[1] == width else output[0]
        class_scores = rows[:, 4:] if self._activated else _sigmoid(rows[:, 4:])
        best = class_scores.max(axis=1)
        keep = best >= score_threshold
        return _from_centres(rows[keep, :4], class_scores[keep], score_threshold)


Decoder = Callable[[FloatArray, float], RawDetections]
DECODERS: dict[str, Callable[[ModelCard], Decoder]] = {
    "yolox": YoloxDecoder,
    "yolov5": Yolov5Decoder,
    "yolov8": Yolov8Decoder,
}


def make_decoder(card: ModelCard) -> Decoder:
    try:
        factory = DECODERS[card.output.decoder]
    except KeyError:
        raise ValueError(
            f"model {card.name!r}: unknown output decoder {card.output.decoder!r} "
            f"(known: {', '.join(sorted(DECODERS))})"
        ) from None
    return factory(card)


def nms(
    boxes: FloatArray,
    scores: FloatArray,
    class_ids: NDArray[np.int64],
    iou_threshold: float,
    *,
    max_detections: int = 100,
) -> NDArray[np.int64]:
    """Indices of the boxes kept by greedy class-aware NMS, best score first.

    A box is dropped when its IoU with a better-scoring kept box of the same class exceeds
    ``iou_threshold``. At most ``max_detections`` indices are returned.
    """
    if boxes.shape[0] == 0:
        return np.zeros((0,), np.int64)
    offset = (class_ids.astype(np.float32) * (float(boxes.max()) + 1.0))[:, None]
    shifted = boxes + offset
    x1, y1, x2, y2 = shifted[:, 0], shifted[:, 1], shifted[:, 2], shifted[:, 3]
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_detections:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        ix1 = np.maximum(x1[best], x1[rest])
        iy1 = np.maximum(y1[best], y1[rest])
        ix2 = np.minimum(x2[best], x2[rest])
        iy2 = np.minimum(y2[best], y2[rest])
        inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, np.int64)
