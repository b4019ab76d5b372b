"""Small builders for scripted detections and zones."""

from __future__ import annotations

import numpy as np

from edge.config.cameras import AnalyticsConfig, ZoneConfig
from edge.vision.detections import Detections
from edge.vision.zones import Zone

LABELS = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "stroller")
CAR, MOTO, TRUCK, PERSON, BICYCLE, STROLLER = 2, 3, 7, 0, 1, 8
GROUPS = {2: 1, 5: 1, 7: 1, 1: 2, 3: 2, 8: 2}


def dets(*items: tuple[tuple[float, float, float, float], int]) -> Detections:
    """Detections from ((x1, y1, x2, y2), class_id) pairs, score 0.9."""
    if not items:
        return Detections.empty(LABELS)
    boxes = np.asarray([b for b, _ in items], np.float32)
    return Detections(boxes, np.full(len(items), 0.9, np.float32), np.asarray([c for _, c in items], np.int64), LABELS)


def square_zone(kind: str = "fire_lane", entry_line: tuple | None = None, classes=(CAR, TRUCK), size: float = 100) -> Zone:  # type: ignore[no-untyped-def]
    cfg = ZoneConfig(id="z", kind=kind, polygon=[(0, 0), (size, 0), (size, size), (0, size)], entry_line=entry_line)
    return Zone.from_config(cfg, tuple(classes))


def analytics(**overrides: float) -> AnalyticsConfig:
    return AnalyticsConfig(**overrides)
