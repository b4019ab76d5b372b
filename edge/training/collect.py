"""Choose, per camera, the frames worth an installer's labelling time, and keep them within a disk quota.

What is worth labelling (issue 11): frames where a zone is occupied (the scenes the analytics decide
on), frames with a detection just above the score threshold (where the model is unsure), and frames
staff marked as a false or a missed alarm. The vision pipeline calls ``wants`` with the reason before
it spends CPU on a JPEG, then ``offer`` with the encoded frame; both are cheap and thread-safe, and
neither raises into the pipeline for a full disk (a frame not kept is logged once per camera).

Rate policy: at most one automatically collected frame per camera and reason every
``min_interval_s`` seconds (a car parked in a fire lane for an hour is one scene, not 3,600 frames);
staff-marked frames are never rate-limited.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.config.training import TrainingConfig
from edge.training.classes import to_site_class
from edge.training.errors import TrainingError
from edge.training.frames import STAFF_REASONS, FrameRecord, FrameStore, LabelBox
from edge.vision.detections import Detections
from edge.vision.zones import Zone

log = logging.getLogger(__name__)


def training_dir(config: TrainingConfig, store_path: Path) -> Path:
    """The training folder: the configured one, else ``training`` next to the store's database."""
    return Path(config.dir) if config.dir is not None else Path(store_path).parent / "training"


def proposals_from(detections: Detections) -> list[LabelBox]:
    """The model's detections as pre-filled labels in site classes (classes with no site meaning dropped)."""
    out: list[LabelBox] = []
    for box, score, class_id in zip(detections.boxes, detections.scores, detections.class_ids, strict=True):
        site = to_site_class(detections.labels[int(class_id)], detections.labels)
        if site is not None:
            x1, y1, x2, y2 = (float(v) for v in box)
            out.append(LabelBox(x1, y1, x2, y2, site, float(score)))
    return out


def candidate_reason(detections: Detections, zones: Sequence[Zone], score_threshold: float,
                     margin: float) -> str | None:
    """Why this frame is worth labelling, or None: a detection near the threshold beats an occupied zone."""
    if not len(detections):
        return None
    if bool(np.any(detections.scores < score_threshold + margin)):
        return "near_threshold"
    for zone in zones:
        watched = np.isin(detections.class_ids, np.asarray(zone.class_ids, np.int64))
        if watched.any() and bool(zone.contains_boxes(detections.boxes[watched]).any()):
            return "zone_occupied"
    return None


class FrameCollector:
    """The vision pipeline's entry point into training data; one per gateway, shared by all cameras."""

    def __init__(self, store: FrameStore, *, min_interval_s: float = 30.0, near_threshold_margin: float = 0.15) -> None:
        self.store = store
        self.min_interval_s = min_interval_s
        self.near_threshold_margin = near_threshold_margin
        self._last: dict[tuple[str, str], float] = {}
        self._full_logged: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: TrainingConfig, store_path: Path) -> FrameCollector:
        store = FrameStore(training_dir(config, store_path), int(config.quota_mb * 1024 * 1024))
        return cls(store, min_interval_s=config.min_interval_s, near_threshold_margin=config.near_threshold_margin)

    def wants(self, camera_id: str, reason: str, t: float) -> bool:
        """True when a frame for ``reason`` at monotonic time ``t`` would be kept (reserves the slot)."""
        if reason in STAFF_REASONS:
            return True
        key = (camera_id, reason)
        with self._lock:
            last = self._last.get(key)
            if last is not None and t - last < self.min_interval_s:
                return False
            self._last[key] = t
            return True

    def offer(self, camera_id: str, jpeg: bytes, detections: Detections | None, reason: str, *,
              width: int | None = None, height: int | None = None, model: str = "", ts: datetime | None = None,
              note: str = "") -> FrameRecord | None:
        """Keep one frame with the model's detections as pre-filled labels.

        ``width`` and ``height`` are read from the JPEG when not given. Returns the record, or None
        when it was not kept (quota full of labelled frames, disk error); a bad argument (unknown
        reason, not a JPEG, unsafe camera id) raises ``TrainingError``.
        """
        if width is None or height is None:
            decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE) if jpeg else None
            if decoded is None:
                raise TrainingError(f"camera {camera_id}: frame is not a decodable JPEG")
            height, width = decoded.shape[:2]
        proposals = proposals_from(detections) if detections is not None else []
        try:
            record = self.store.add(camera_id, jpeg, reason=reason, width=width, height=height, model=model,
                                    proposals=proposals, ts=ts, note=note)
        except OSError as exc:
            log.warning("camera %s: cannot keep a frame for labelling: %s", camera_id, exc)
            return None
        if record is None and camera_id not in self._full_logged:
            self._full_logged.add(camera_id)
            log.warning("camera %s: training frame quota is full of labelled frames; new frames are not kept",
                        camera_id)
        return record


    def observe(self, camera_id: str, image: NDArray[np.uint8], detections: Detections, zones: Sequence[Zone],
                score_threshold: float, t: float, ts: datetime, model: str = "") -> FrameRecord | None:
        """The pipeline's per-frame call: keep ``image`` if it is a candidate and its slot is free.

        Costs a few vector operations on frames that are not kept; a kept frame is encoded to JPEG
        here (quality 90), at most once per camera, reason and ``min_interval_s``. Never raises: a
        collection failure is logged and the analytics go on.
        """
        reason = candidate_reason(detections, zones, score_threshold, self.near_threshold_margin)
        if reason is None or not self.wants(camera_id, reason, t):
            return None
        try:
            ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if not ok:
                return None
            height, width = image.shape[:2]
            return self.offer(camera_id, encoded.tobytes(), detections, reason, width=width, height=height,
                              model=model, ts=ts)
        except (TrainingError, cv2.error) as exc:
            log.warning("camera %s: frame not kept for labelling: %s", camera_id, exc)
            return None


__all__ = ["FrameCollector", "TrainingError", "candidate_reason", "proposals_from", "training_dir"]
