"""YOLOX decoding and class-aware NMS against boxes computed by hand, and against a plain loop."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.vision.decode import YoloxDecoder, nms
from edge.vision.detector import Detector
from edge.vision.preprocess import Letterboxer, LetterboxTransform, Region
from models.registry import ModelRegistry


@pytest.fixture(scope="module")
def card():  # type: ignore[no-untyped-def]
    return ModelRegistry().card("yolox_nano")


def _row(x: float, y: float, w: float, h: float, obj: float, cls: int, score: float) -> np.ndarray:
    row = np.zeros(85, np.float32)
    row[:5] = (x, y, math.log(w), math.log(h), obj)
    row[5 + cls] = score
    return row


def test_decode_hand_computed_boxes(card) -> None:  # type: ignore[no-untyped-def]
    out = np.zeros((1, 3549, 85), np.float32)
    # stride 8, grid (10, 5): index 5*52 + 10
    out[0, 270] = _row(0.5, 0.25, 4, 2, 0.9, 2, 0.8)
    # stride 16, grid (7, 3): index 52*52 + 3*26 + 7
    out[0, 2704 + 85] = _row(0.0, 0.0, 1, 3, 0.5, 3, 0.9)
    # stride 32, grid (12, 12): score 0.95 * 0.2 = 0.19, below the threshold
    out[0, 3548] = _row(0.5, 0.5, 2, 2, 0.95, 0, 0.2)
    # objectness below the threshold: dropped before the class scores are even looked at
    out[0, 100] = _row(0.0, 0.0, 1, 1, 0.2, 5, 1.0)
    raw = YoloxDecoder(card)(out, 0.3)
    order = np.argsort(-raw.scores)
    boxes, scores, ids = raw.boxes[order], raw.scores[order], raw.class_ids[order]
    # cx = (0.5 + 10) * 8 = 84, cy = (0.25 + 5) * 8 = 42, w = 4 * 8 = 32, h = 2 * 8 = 16
    np.testing.assert_allclose(boxes[0], [68, 34, 100, 50], atol=1e-4)
    # cx = 7 * 16 = 112, cy = 3 * 16 = 48, w = 16, h = 48
    np.testing.assert_allclose(boxes[1], [104, 24, 120, 72], atol=1e-4)
    np.testing.assert_allclose(scores, [0.72, 0.45], atol=1e-6)
    assert ids.tolist() == [2, 3]


def test_decode_rejects_wrong_shape(card) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="expected"):
        YoloxDecoder(card)(np.zeros((1, 3549, 84), np.float32), 0.3)


def test_nms_is_class_aware() -> None:
    boxes = np.asarray([
        [0, 0, 10, 10],    # 0: best
        [1, 1, 11, 11],    # 1: IoU 81/119 = 0.68 with 0, same class -> suppressed
        [1, 1, 11, 11],    # 2: same place, other class -> kept
        [20, 20, 30, 30],  # 3: elsewhere -> kept
        [5, 0, 15, 10],    # 4: IoU 50/150 = 0.33 with 0 -> kept at 0.45
    ], np.float32)
    scores = np.asarray([0.9, 0.8, 0.7, 0.6, 0.5], np.float32)
    classes = np.asarray([0, 0, 1, 0, 0], np.int64)
    assert nms(boxes, scores, classes, 0.45).tolist() == [0, 2, 3, 4]
    assert nms(boxes, scores, classes, 0.3).tolist() == [0, 2, 3]
    assert nms(boxes, scores, classes, 0.45, max_detections=2).tolist() == [0, 2]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), 0.5).size == 0


def _loop_decode(raw: np.ndarray, threshold: float) -> list[tuple[float, ...]]:
    """The MODEL.md decode written as a plain loop, as a reference for the vectorised one."""
    found = []
    index = 0
    for stride in (8, 16, 32):
        side = 416 // stride
        for gy in range(side):
            for gx in range(side):
                row = raw[index]
                index += 1
                cls = int(np.argmax(row[5:]))
                score = float(row[4] * row[5 + cls])
                if score < threshold:
                    continue
                cx, cy = (row[0] + gx) * stride, (row[1] + gy) * stride
                w, h = math.exp(row[2]) * stride, math.exp(row[3]) * stride
                found.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score, cls))
    return sorted(found, key=lambda f: -f[4])


def test_vectorised_decode_matches_loop_on_real_output(detector: Detector, shared_dir: Path) -> None:
    image = cv2.imread(str(shared_dir / "media" / "a5_paddledet_ppvehicle_demo_001.jpeg"))
    tensor, _ = Letterboxer(detector.card.input)(image)
    output = detector.infer(tensor)
    raw = YoloxDecoder(detector.card)(output, 0.3)
    order = np.argsort(-raw.scores, kind="stable")
    reference = _loop_decode(output[0], 0.3)
    assert len(reference) == len(order) > 10
    for k, ref in zip(order, reference, strict=True):
        np.testing.assert_allclose(raw.boxes[k], ref[:4], rtol=1e-4, atol=1e-3)
        assert raw.class_ids[k] == ref[5]


def test_letterbox_maps_boxes_back(card) -> None:  # type: ignore[no-untyped-def]
    frame = np.zeros((416, 832, 3), np.uint8)
    tensor, transform = Letterboxer(card.input)(frame)
    assert tensor.shape == (1, 3, 416, 416) and tensor.dtype == np.float32
    assert transform.scale == 0.5
    # bottom half of the model input is padding (grey 114), top-left anchored
    assert tensor[0, :, 300, 10].tolist() == [114.0, 114.0, 114.0]
    assert tensor[0, :, 10, 10].tolist() == [0.0, 0.0, 0.0]
    boxes = transform.to_frame(np.asarray([[10, 20, 110, 120]], np.float32))
    np.testing.assert_allclose(boxes, [[20, 40, 220, 240]])


def test_region_crop_maps_to_full_frame(card) -> None:  # type: ignore[no-untyped-def]
    frame = np.zeros((600, 1000, 3), np.uint8)
    _, transform = Letterboxer(card.input)(frame, Region(200, 100, 408, 308))
    assert isinstance(transform, LetterboxTransform)
    assert transform.scale == 2.0
    boxes = transform.to_frame(np.asarray([[0, 0, 416, 416], [-50, 10, 20, 500]], np.float32))
    np.testing.assert_allclose(boxes[0], [200, 100, 408, 308])
    np.testing.assert_allclose(boxes[1], [200, 105, 210, 308])  # clipped to the crop
