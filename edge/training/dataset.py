"""Labelled frames -> letterboxed training batches (the same letterbox the gateway's detector uses).

Images are decoded once and kept letterboxed in memory as uint8: 600 frames at 416 px are 310 MB,
which a 2-core gateway with 1-2 GB to spare can hold; a site with thousands of labelled frames should
train at a smaller ``training.input_size`` or on a subset. Augmentation is a horizontal flip and a
small brightness / contrast jitter: site cameras are fixed, so geometry varies little,
but light does (day, night IR, lift lamps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.training.classes import SITE_CLASSES
from edge.training.errors import TrainingError
from edge.training.frames import FrameRecord, FrameStore

PAD_VALUE = 114
MAX_OBJECTS = 48  # boxes per image the loss is padded to; more are rare on one estate frame


@dataclass(frozen=True, slots=True)
class Sample:
    """One letterboxed image (size x size x 3 BGR uint8) and its boxes in input pixels."""

    image: NDArray[np.uint8]
    boxes: NDArray[np.float32]  # [K, 4] xyxy
    classes: NDArray[np.int64]  # [K] index into SITE_CLASSES
    frame_id: str


def letterbox(image: NDArray[np.uint8], size: int) -> tuple[NDArray[np.uint8], float]:
    """Resize keeping the aspect ratio, paste top-left on a ``size`` square of grey 114; (canvas, scale)."""
    h, w = image.shape[:2]
    scale = min(size / w, size / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.full((size, size, 3), PAD_VALUE, np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return canvas, scale


def load_sample(store: FrameStore, record: FrameRecord, size: int) -> Sample:
    """Read and letterbox one labelled frame; a missing or undecodable JPEG names the frame."""
    if record.boxes is None:
        raise TrainingError(f"camera {record.camera_id}: frame {record.frame_id} is not labelled")
    path = store.image_path(record.camera_id, record.frame_id)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise TrainingError(f"{path}: cannot decode the frame's JPEG")
    canvas, scale = letterbox(cast("NDArray[np.uint8]", image), size)  # IMREAD_COLOR: BGR uint8 (stubs: MatLike)
    boxes = np.asarray([[b.x1, b.y1, b.x2, b.y2] for b in record.boxes], np.float32).reshape(-1, 4) * scale
    classes = np.asarray([SITE_CLASSES.index(b.label) for b in record.boxes], np.int64)
    return Sample(canvas, boxes, classes, record.frame_id)


def load_samples(store: FrameStore, records: Sequence[FrameRecord], size: int) -> list[Sample]:
    return [load_sample(store, r, size) for r in records]


def make_batch(samples: Sequence[Sample], rng: np.random.Generator, *, augment: bool = True
               ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int32], NDArray[np.bool_]]:
    """(images [B, 3, S, S] float32 0-255 BGR, gt boxes [B, M, 4], gt classes [B, M], valid [B, M])."""
    size = samples[0].image.shape[0]
    batch = len(samples)
    images = np.empty((batch, 3, size, size), np.float32)
    gt_boxes = np.zeros((batch, MAX_OBJECTS, 4), np.float32)
    gt_boxes[..., 2:] = 1.0  # padding boxes are 1 px, never matched (valid is False)
    gt_classes = np.zeros((batch, MAX_OBJECTS), np.int32)
    valid = np.zeros((batch, MAX_OBJECTS), np.bool_)
    for i, sample in enumerate(samples):
        image = sample.image.astype(np.float32)
        boxes = sample.boxes.copy()
        if augment:
            if rng.random() < 0.5:
                image = image[:, ::-1]
                boxes[:, [0, 2]] = size - boxes[:, [2, 0]]
            gain = rng.uniform(0.75, 1.25)
            bias = rng.uniform(-20, 20)
            image = np.clip(image * gain + bias, 0, 255)
        images[i] = image.transpose(2, 0, 1)
        k = min(len(boxes), MAX_OBJECTS)
        gt_boxes[i, :k] = boxes[:k]
        gt_classes[i, :k] = sample.classes[:k]
        valid[i, :k] = True
    return images, gt_boxes, gt_classes, valid


def labelled(records: Sequence[FrameRecord], split: str, holdout_fraction: float) -> list[FrameRecord]:
    """Labelled frames of one split ("train" or "holdout")."""
    return [r for r in records if r.labelled and r.split(holdout_fraction) == split]


def image_path(store: FrameStore, record: FrameRecord) -> Path:
    return store.image_path(record.camera_id, record.frame_id)
