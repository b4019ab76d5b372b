"""Score a model on a camera's held-out labels, for the classes that camera's zones watch.

The score that decides activation is the mean AP at IoU 0.5 over the watched site classes that
have at least one labelled box in the hold-out split (a class nobody labelled says nothing about
either model). Recall and precision at the card's own operating threshold are reported beside it,
because that is what the analytics run at. Both models are run by the gateway's own onnxruntime
``Detector`` (same letterbox, decoder and NMS as in production), never by the training graph, so
a score describes what the camera would actually get.

A COCO model's classes are mapped onto site classes (``COCO_TO_SITE``) before matching: its
"motorcycle" competes as an e-bike, which is what the shipped analytics count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.config.cameras import CameraConfig
from edge.training.classes import SITE_CLASSES, to_site_class
from edge.training.errors import TrainingError
from edge.training.frames import FrameRecord, FrameStore
from edge.vision.detector import Detector
from models.registry import ModelCard

EVAL_SCORE_FLOOR = 0.05
MATCH_IOU = 0.5


@dataclass(frozen=True, slots=True)
class ClassScore:
    ap50: float
    recall: float  # at the card's score threshold
    precision: float
    labelled: int  # boxes in the hold-out split


@dataclass(frozen=True, slots=True)
class Scores:
    model: str
    sha256: str
    frames: int
    classes: dict[str, ClassScore] = field(default_factory=dict)

    @property
    def score(self) -> float | None:
        """Mean AP50 over classes with labelled boxes; None when there are none."""
        scored = [c.ap50 for c in self.classes.values() if c.labelled]
        return float(np.mean(scored)) if scored else None

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "sha256": self.sha256, "frames": self.frames, "score": self.score,
                "classes": {k: {"ap50": round(v.ap50, 4), "recall": round(v.recall, 4),
                                "precision": round(v.precision, 4), "labelled": v.labelled}
                            for k, v in self.classes.items()}}


def watched_site_classes(camera: CameraConfig, card: ModelCard) -> set[str]:
    """Site classes the camera's zones react to under ``card`` (its explicit names, else the card's roles)."""
    a = camera.analytics
    names: list[str] = []
    for zone in camera.zones:
        if zone.classes:
            names += zone.classes
        elif zone.kind == "fire_lane":
            names += a.vehicle_classes or [*_role(card, "vehicle"), *_role(card, "ebike"), *_role(card, "bicycle")]
        else:
            names += a.ebike_classes or list(_role(card, "ebike"))
            if zone.bicycles_are_ebikes:
                names += _role(card, "bicycle")
    out = {to_site_class(n, card.classes) for n in names}
    return {n for n in out if n is not None}


def _role(card: ModelCard, role: str) -> tuple[str, ...]:
    if role in card.roles:
        return card.roles[role]
    return (role,) if role in card.classes else ()


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.asarray(inter / np.maximum(union, 1e-9))


def average_precision(hits: Sequence[tuple[float, bool]], labelled: int) -> float:
    """VOC-style all-point AP from (score, true positive) pairs over the whole split."""
    if labelled == 0:
        return 0.0
    ordered = sorted(hits, key=lambda h: -h[0])
    tp = np.cumsum([1.0 if h[1] else 0.0 for h in ordered])
    fp = np.cumsum([0.0 if h[1] else 1.0 for h in ordered])
    if not len(ordered):
        return 0.0
    recall = tp / labelled
    precision = tp / np.maximum(tp + fp, 1e-9)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[1.0], precision, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    changes = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


def evaluate(card: ModelCard, weights: Path, store: FrameStore, records: Iterable[FrameRecord],
             classes: set[str] | None = None) -> Scores:
    """Scores of ``card`` on labelled ``records`` for ``classes`` (default: all site classes)."""
    wanted = set(SITE_CLASSES) if classes is None else set(classes)
    detector = Detector(card, weights, score_threshold=EVAL_SCORE_FLOOR, intra_op_threads=2)
    threshold = card.score_threshold
    hits: dict[str, list[tuple[float, bool]]] = {c: [] for c in wanted}
    labelled = dict.fromkeys(wanted, 0)
    tp_at = dict.fromkeys(wanted, 0)
    fp_at = dict.fromkeys(wanted, 0)
    frames = 0
    for record in records:
        if record.boxes is None:
            continue
        path = store.image_path(record.camera_id, record.frame_id)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise TrainingError(f"{path}: cannot decode the frame's JPEG")
        frames += 1
        detections, _ = detector.detect(cast("NDArray[np.uint8]", image))  # IMREAD_COLOR: BGR uint8 (stubs: MatLike)
        for cls in wanted:
            gt = np.asarray([[b.x1, b.y1, b.x2, b.y2] for b in record.boxes if b.label == cls], np.float32)
            gt = gt.reshape(-1, 4)
            labelled[cls] += len(gt)
            used = np.zeros(len(gt), bool)
            preds = [(float(s), b) for b, s, c in zip(detections.boxes, detections.scores, detections.class_ids,
                                                        strict=True)
                     if to_site_class(detections.labels[int(c)], detections.labels) == cls]
            for score, box in sorted(preds, key=lambda p: -p[0]):
                matched = False
                if len(gt):
                    overlaps = np.where(used, -1.0, _iou(box, gt))
                    best = int(np.argmax(overlaps))
                    if overlaps[best] >= MATCH_IOU:
                        used[best] = True
                        matched = True
                hits[cls].append((score, matched))
                if score >= threshold:
                    if matched:
                        tp_at[cls] += 1
                    else:
                        fp_at[cls] += 1
    out = {
        cls: ClassScore(
            average_precision(hits[cls], labelled[cls]),
            tp_at[cls] / labelled[cls] if labelled[cls] else 0.0,
            tp_at[cls] / (tp_at[cls] + fp_at[cls]) if tp_at[cls] + fp_at[cls] else 0.0,
            labelled[cls],
        )
        for cls in sorted(wanted)
    }
    return Scores(card.name, card.sha256, frames, out)
