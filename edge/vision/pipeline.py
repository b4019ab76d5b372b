"""One camera's per-frame work: health -> motion gate -> detect (ROI) -> track -> analytics -> evidence.

``CameraPipeline.process`` is synchronous, pure CPU and deterministic for a given frame sequence and
timestamps: the camera source runs it in the inference worker pool, tests and the benchmark call
it directly with scripted times. It owns all per-camera state (tracks, dwell timers, gate), so one
pipeline must only ever see one camera's frames, in order.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from edge.config.cameras import CameraConfig
from edge.config.privacy import EvidenceBlur, PrivacyPolicy
from edge.errors import ConfigError
from edge.vision.analytics import Decision, EbikeEntryMonitor, FireLaneMonitor, decision_text
from edge.vision.classes import ZoneClasses, class_groups, person_ids, zone_classes
from edge.vision.decode import nms
from edge.vision.detections import Box, Detections
from edge.vision.detector import Detector, DetectTimings
from edge.vision.evidence import EvidenceImages, render_copies
from edge.vision.image_health import ImageHealthMonitor, ImageHealthState
from edge.vision.motion import GateDecision, MotionGate, small_grey
from edge.vision.preprocess import Region
from edge.vision.tracker import IouTracker
from edge.vision.zones import Zone, zones_region

log = logging.getLogger(__name__)

GROUP_MERGE_IOU = 0.6  # same object reported as car and truck (or bicycle and motorcycle)


def merge_class_groups(detections: Detections, groups: dict[int, int], iou: float = GROUP_MERGE_IOU) -> Detections:
    """Keep the best of overlapping boxes whose classes are in one group.

    Class-aware NMS rightly keeps a "car" and a "truck" box on the same van (they are different
    classes), but downstream that is one vehicle: two tracks, two boxes in the evidence, and a
    false positive in any count. This second, group-level NMS pass removes the duplicate.
    """
    if len(detections) < 2 or not groups:
        return detections
    ids = np.asarray([groups.get(int(c), 1000 + int(c)) for c in detections.class_ids], np.int64)
    keep = nms(detections.boxes, detections.scores, ids, iou, max_detections=len(detections))
    return detections.select(np.sort(keep))


def merge_vehicle_classes(detections: Detections) -> Detections:
    return merge_class_groups(detections, class_groups(detections.labels))


@dataclass(frozen=True, slots=True)
class FrameResult:
    t: float
    ts: datetime
    gate: GateDecision
    health: ImageHealthState
    detections: Detections | None  # None when the gate skipped inference
    decisions: tuple[Decision, ...]
    evidence: tuple[EvidenceImages, ...]  # one picture (upload and local copy) per decision, same order
    timings: DetectTimings | None
    pipeline_ms: float
    people: tuple[Box, ...] = ()  # person boxes found on this frame (privacy blurring)

    @property
    def inferred(self) -> bool:
        return self.detections is not None


def compile_zones(camera: CameraConfig, detector: Detector) -> list[tuple[Zone, ZoneClasses]]:
    """Zones with their class ids resolved against the model card; unknown names are config errors."""
    card = detector.card
    zones: list[tuple[Zone, ZoneClasses]] = []
    for index, cfg in enumerate(camera.zones):
        where = f"cameras[{camera.id}].zones[{index}] ({cfg.id})"
        classes = zone_classes(camera, cfg, card, where)
        try:
            zones.append((Zone.from_config(cfg, classes.watched), classes))
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    return zones


class FrameObserver(Protocol):
    """Takes analysed frames worth labelling (``edge.training.collect.FrameCollector``); must not raise."""

    def observe(self, camera_id: str, image: NDArray[np.uint8], detections: Detections, zones: list[Zone],
                score_threshold: float, t: float, ts: datetime, model: str = "") -> object: ...


class CameraPipeline:
    """One camera's analytics. ``tz`` is the estate's time zone, used for evidence captions.

    Privacy: ``blur`` is the camera's policy under the estate's (``EstateConfig.evidence_blur``;
    default: the estate defaults with the camera's own settings, blurred uploads, unblurred local
    copy). When any copy is blurred, the same inference also keeps person boxes (they are not
    tracked) and evidence blurs them; with ``roi.mode: zones`` people outside the crop are found by
    one extra full-frame inference per evidence image (alarms are rare, so this costs nothing
    measurable). Raises ``ConfigError`` when the camera's own settings would weaken the default policy.
    """

    def __init__(self, camera: CameraConfig, detector: Detector, *, tz: tzinfo = UTC,
                 blur: EvidenceBlur | None = None) -> None:
        self.camera = camera
        self.detector = detector
        self.tz = tz
        if blur is None:
            try:
                blur = PrivacyPolicy().for_camera(f"cameras[{camera.id}]", camera.privacy.blur_people_upload,
                                                  camera.privacy.blur_people_local)
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
        self.blur = blur
        self.blur_evidence = blur.any
        self.person_ids = person_ids(camera, detector.card) if self.blur_evidence else ()
        compiled = compile_zones(camera, detector)
        self.zones = [zone for zone, _ in compiled]
        labels = detector.labels
        groups = class_groups(labels, detector.card)
        self._groups = groups
        a = camera.analytics
        self.tracker = IouTracker(
            iou_threshold=a.track_iou, max_misses=a.track_max_misses, max_gap_s=a.track_max_gap_s,
            class_groups=groups,
        )
        self.class_ids = tuple(sorted({c for z in self.zones for c in z.class_ids}))
        self._compiled = compiled
        self._drawn = self.zones
        # Picture size the zones were drawn on; None: the analysed frames' own (see edge.vision.streams).
        self.zone_reference: tuple[int, int] | None = camera.zones_size
        self._build_zone_analytics(self.zones)
        self.image_health = ImageHealthMonitor(camera.health)
        self._region: Region | None = None
        self._frame_size: tuple[int, int] | None = None
        self.collector: FrameObserver | None = None  # set by the gateway when it keeps frames for labelling

    def crop_share(self, width: int, height: int) -> tuple[float, float]:
        """Share (width, height) of a ``width`` x ``height`` picture that inference sees (zone crop or all)."""
        if self.camera.roi.mode != "zones" or not self._drawn:
            return (1.0, 1.0)
        region = zones_region(self._drawn, self.camera.roi.margin, width, height)
        return (region.width / width, region.height / height)

    def _build_zone_analytics(self, zones: list[Zone]) -> None:
        """Monitors and motion gate for ``zones`` (in analysed-frame pixels)."""
        a, labels = self.camera.analytics, self.detector.labels
        self.zones = zones
        self.fire_lanes = [FireLaneMonitor(z, a, labels) for z in zones if z.kind == "fire_lane"]
        self.ebike_zones = [
            EbikeEntryMonitor(z, a, labels, c.ebike)
            for z, (_, c) in zip(zones, self._compiled, strict=True) if z.kind == "ebike_entry"
        ]
        self.gate = MotionGate(self.camera.gating, zones)

    def _prepare(self, width: int, height: int) -> None:
        if self._frame_size == (width, height):
            return
        self._frame_size = (width, height)
        reference = self.zone_reference
        if reference is not None and reference != (width, height):
            sx, sy = width / reference[0], height / reference[1]
            log.info("camera %s: zones drawn on %dx%d, analysed on %dx%d: scaled", self.camera.id,
                     reference[0], reference[1], width, height)
            self._build_zone_analytics([zone.scaled(sx, sy) for zone, _ in self._compiled])
        elif self.zones is not self._drawn:
            self._build_zone_analytics(self._drawn)
        for zone in self.zones:
            _, _, x2, y2 = zone.bounds()
            if x2 > width or y2 > height:
                log.warning(
                    "camera %s: zone %s reaches (%.0f, %.0f), outside the %dx%d frame; check the zone "
                    "was drawn on this stream's resolution", self.camera.id, zone.id, x2, y2, width, height,
                )
        if self.camera.roi.mode == "zones" and self.zones:
            self._region = zones_region(self.zones, self.camera.roi.margin, width, height)
        else:
            self._region = None

    def process(self, image: NDArray[np.uint8], t: float, ts: datetime) -> FrameResult:
        """Analyse one frame seen at monotonic time ``t`` (seconds) and wall time ``ts``."""
        start = time.perf_counter()
        h, w = image.shape[:2]
        self._prepare(w, h)
        small = small_grey(image, self.camera.gating.width)
        health = self.image_health.update(small, t)
        gate = self.gate.decide(small, w, t)
        if not self.zones or not gate.infer:
            return FrameResult(t, ts, gate, health, None, (), (), None, (time.perf_counter() - start) * 1e3)
        wanted = tuple(sorted({*self.class_ids, *self.person_ids}))
        detections, timings = self.detector.detect(image, self._region, class_ids=wanted)
        detections = merge_class_groups(detections, self._groups)
        people = tuple(detections.of_classes(self.person_ids).to_boxes()) if self.person_ids else ()
        tracked = detections.of_classes(self.class_ids) if self.person_ids else detections
        tracks = self.tracker.update(tracked, t)
        if self.collector is not None:
            self.collector.observe(self.camera.id, image, detections, self.zones, self.detector.score_threshold,
                                   t, ts, self.detector.card.name)
        decisions: list[Decision] = []
        for monitor in self.fire_lanes:
            decisions.extend(monitor.update(tracks, t))
        for ebike in self.ebike_zones:
            decisions.extend(ebike.update(tracks, t))
        blur = self._people_to_blur(image, people) if decisions else ()
        evidence = tuple(self._evidence(image, d, ts, blur) for d in decisions)
        return FrameResult(
            t, ts, gate, health, detections, tuple(decisions), evidence, timings,
            (time.perf_counter() - start) * 1e3, people,
        )

    def _people_to_blur(self, image: NDArray[np.uint8], people: tuple[Box, ...]) -> tuple[Box, ...]:
        """People on the whole frame: the crop's, or one full-frame inference when inference is cropped."""
        if not self.blur_evidence:
            return ()
        if self._region is None:
            return people
        whole, _ = self.detector.detect(image, None, class_ids=self.person_ids)
        return tuple(whole.to_boxes())

    def _evidence(self, image: NDArray[np.uint8], decision: Decision, ts: datetime,
                  people: tuple[Box, ...]) -> EvidenceImages:
        zone = next(z for z in self.zones if z.id == decision.zone_id)
        # The decision in the estate's words (the same sentence as the alarm), after the camera's name.
        caption = f"{self.camera.name or self.camera.id}  {decision_text(decision, self.camera.id)['message']}"
        return render_copies(
            image, zone, decision.box, decision.boxes, caption, ts, policy=self.blur, people=people,
            quality=self.camera.evidence_quality, tz=self.tz,
        )
