"""One camera's analysis: frames in, decisions out as events (with evidence) and health points.

``CameraAnalyser`` is the vision side of a camera source. Acquisition (ONVIF resolve, reconnect,
stream health, device status) is ``drivers.camera.source.CameraSource``, which hands every new frame
here; ``edge.cameras`` joins the two. This module imports no driver: a frame is anything with
``image``, ``mono`` and ``ts`` (``FrameLike``) and a media profile anything with a token and a size.

Backpressure: a camera has at most one frame in the inference pool; frames arriving meanwhile
replace each other in the frame source's one-frame slot (counted as dropped). The pool has
``EDGE_VISION_WORKERS`` threads (default: 2, one per core of the reference gateway), shared by all
cameras, so 16 cameras queue at most 16 jobs, one each, never a backlog of stale frames.

Events emitted (``device_id`` = camera id; ``ts`` = capture time of the deciding frame). Every
one carries ``active`` (true raises, false clears: the shape ``edge.vision.alarms`` maps onto the
rule engine) and a subject: ``lane`` = ``<camera>/<zone>``, ``entry`` = ``<camera>/<zone>/<track>``,
or ``camera``.

=========================  ========  ======================================================  ========
code                       severity  data                                                    evidence
=========================  ========  ======================================================  ========
fire.lane_blocked          major     lane, active=true, camera, zone, zone_name, track_id,   JPEG
                                     label, score, box, boxes, dwell_s
fire.lane_cleared          info      lane, active=false, camera, zone, zone_name, blocked_s,  JPEG
                                     boxes
fire.ebike_entry           major     entry, active=true, camera, zone, zone_name, track_id,  JPEG
                                     label, score, box, boxes
camera.frozen              warning   camera, active=true, diff (mean grey-level change)      JPEG
camera.frozen_cleared      info      camera, active=false                                    none
camera.covered             warning   camera, active=true, std (grey-level spread)            JPEG
camera.covered_cleared     info      camera, active=false                                    none
=========================  ========  ======================================================  ========

``box`` is ``{x1, y1, x2, y2, score, label, track_id}`` in frame pixels; ``boxes`` is a list of
those for every relevant object in the zone at that frame.

Health points (``health_points``): ``frozen`` and ``covered`` while the stream is alive, ``fps``
(frames analysed per second since the last call) and ``inference_s`` (mean model time).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Protocol, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.config.cameras import CameraConfig
from edge.config.privacy import EvidenceBlur
from edge.messages import say
from edge.records import Event, Severity
from edge.vision.analytics import EBIKE_ENTRY, LANE_BLOCKED, LANE_CLEARED, Decision, decision_text
from edge.vision.detections import Box
from edge.vision.detector import Detector, shared_detector
from edge.vision.evidence import EvidenceImages, render_copies
from edge.vision.pipeline import CameraPipeline, FrameObserver, FrameResult
from edge.vision.privacy import blur_people
from edge.vision.streams import ProfileLike, choose_profile
from edge.vision.zones import Zone
from models.registry import ModelRegistry

log = logging.getLogger(__name__)

WORKERS_ENV = "EDGE_VISION_WORKERS"
SEVERITY = {LANE_BLOCKED: Severity.MAJOR, LANE_CLEARED: Severity.INFO, EBIKE_ENTRY: Severity.MAJOR}

_pool: ThreadPoolExecutor | None = None


def inference_pool() -> ThreadPoolExecutor:
    """The process-wide inference thread pool (``EDGE_VISION_WORKERS`` threads, default 2)."""
    global _pool
    if _pool is None:
        workers = int(os.environ.get(WORKERS_ENV, "2"))
        _pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="vision")
    return _pool


class FrameLike(Protocol):
    """A decoded BGR frame; ``mono`` and ``ts`` are the gateway clock when it was captured."""

    @property
    def image(self) -> NDArray[np.uint8]: ...

    @property
    def mono(self) -> float: ...

    @property
    def ts(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class LatestView:
    """The latest analysed frame as JPEG (zone pixels, not scaled) and its detections, for the panel."""

    jpeg: bytes
    width: int
    height: int
    ts: datetime
    boxes: tuple[Box, ...]


class CameraAnalyser:
    """Frames to decisions for one camera: model, pipeline, image health, evidence, the panel's view."""

    def __init__(
        self,
        camera: CameraConfig,
        *,
        registry: ModelRegistry | None = None,
        detector: Detector | None = None,
        executor: ThreadPoolExecutor | None = None,
        tz: tzinfo = UTC,
        collector: FrameObserver | None = None,
        blur: EvidenceBlur | None = None,
    ) -> None:
        self.camera = camera
        self._blur = blur  # the estate's privacy policy for this camera (None: defaults, edge.config.privacy)
        self._collector = collector
        self._registry = registry or ModelRegistry()
        self._detector = detector
        self._executor = executor
        self._tz = tz  # the estate's time zone: evidence captions
        self.pipeline: CameraPipeline | None = None
        self._frozen = False
        self._covered = False
        self._analysed = 0
        self._analysed_reported = 0  # ``_analysed`` at the last health_points call: the fps numerator
        self._inferred_ms: list[float] = []
        self.last_result: FrameResult | None = None
        self._last_frame: FrameLike | None = None
        self._last_boxes: tuple[Box, ...] = ()
        self._last_people: tuple[Box, ...] = ()  # blurred in the live view / frozen evidence (privacy)

    # -- setup -----------------------------------------------------------------------------------

    def _build_detector(self) -> Detector:
        if self._detector is not None:
            return self._detector
        model = self.camera.model
        return shared_detector(
            self._registry.with_cards_in(Path(model.dir) if model.dir else None), model.card,
            models_dir=Path(model.dir) if model.dir else None,
            providers=tuple(model.providers), intra_op_threads=model.intra_op_threads,
            score_threshold=model.score_threshold,
        )

    async def prepare(self) -> None:
        """Load the model (off the event loop) and build the pipeline; a bad card raises ``ConfigError``."""
        detector = await asyncio.to_thread(self._build_detector)
        self.pipeline = CameraPipeline(self.camera, detector, tz=self._tz, blur=self._blur)
        self.pipeline.collector = self._collector

    def choose_profile(self, profiles: Sequence[ProfileLike]) -> str:
        """The smallest RTSP profile that fills the model (``edge.vision.streams``); zones scale to it."""
        main = profiles[0]
        if self.pipeline is None or not (main.width and main.height):
            return main.token
        spec = self.pipeline.detector.card.input
        crop = self.pipeline.crop_share(main.width, main.height)
        chosen = choose_profile(profiles, spec.width, spec.height, crop=crop)
        if chosen is not main:
            self.pipeline.zone_reference = self.camera.zones_size or (main.width, main.height)
            log.info("camera %s: analysing profile %s (%sx%s) instead of %s (%dx%d)", self.camera.id, chosen.token,
                     chosen.width, chosen.height, main.token, main.width, main.height)
        return chosen.token

    # -- analyse ---------------------------------------------------------------------------------

    async def analyse(self, frame: FrameLike) -> list[Event]:
        """One frame through the pipeline in the shared inference pool; its decisions as events."""
        assert self.pipeline is not None, "prepare() first"
        loop = asyncio.get_running_loop()
        executor = self._executor or inference_pool()
        result = await loop.run_in_executor(executor, self.pipeline.process, frame.image, frame.mono, frame.ts)
        self.last_result = result
        self._last_frame = frame
        if result.detections is not None:
            self._last_boxes = tuple(result.detections.to_boxes())
            self._last_people = result.people
        self._analysed += 1
        if result.timings is not None:
            self._inferred_ms.append(result.timings.total_ms)
        events = [self._decision_event(d, images, frame) for d, images in zip(result.decisions, result.evidence,
                                                                          strict=True)]
        events += await self._image_health_events(result, frame)
        return events

    def health_points(self, alive: bool, span_s: float) -> list[tuple[str, float, str]]:
        """Image health while the stream is alive, the analysis rate over ``span_s`` and the mean model time."""
        points: list[tuple[str, float, str]] = []
        if alive:
            points += [("frozen", 1.0 if self._frozen else 0.0, ""), ("covered", 1.0 if self._covered else 0.0, "")]
        if span_s > 0 and self._analysed >= self._analysed_reported:
            points.append(("fps", round((self._analysed - self._analysed_reported) / span_s, 3), "1/s"))
        if self._inferred_ms:
            mean = sum(self._inferred_ms) / len(self._inferred_ms)
            # Named after the unit it reaches the platform in: durations are canonical in seconds
            # (edge.units), so an "_ms" point would carry seconds (issue 13 point 6).
            points.append(("inference_s", round(mean / 1000, 5), "s"))
            self._inferred_ms.clear()
        self._analysed_reported = self._analysed
        return points

    async def latest_view(self) -> LatestView | None:
        """The newest analysed frame and the detections of the newest inferred one (panel snapshot hook)."""
        frame = self._last_frame
        if frame is None:
            return None
        image = frame.image
        if self.pipeline is not None and self.pipeline.blur.local and self._last_people:
            image = image.copy()
            blur_people(image, self._last_people)
        h, w = image.shape[:2]
        boxes = self._last_boxes
        reference = self.pipeline.zone_reference if self.pipeline is not None else None
        if reference is not None and reference != (w, h):
            # Shown in the pixels the zones were drawn in (a sub-stream frame scaled to the main stream's).
            sx, sy = reference[0] / w, reference[1] / h
            image = await asyncio.to_thread(_resized, image, reference)
            boxes = tuple(replace(b, x1=b.x1 * sx, y1=b.y1 * sy, x2=b.x2 * sx, y2=b.y2 * sy) for b in boxes)
            w, h = reference
        ok, buf = await asyncio.to_thread(cv2.imencode, ".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            return None
        return LatestView(buf.tobytes(), w, h, frame.ts, boxes)

    # -- records ---------------------------------------------------------------------------------

    def _decision_event(self, decision: Decision, images: EvidenceImages, frame: FrameLike) -> Event:
        cam, zone = self.camera.id, decision.zone_id
        data: dict[str, object] = {"camera": cam, "zone": zone, "zone_name": decision.zone_name,
                                   "active": decision.code != LANE_CLEARED,
                                   "boxes": [b.as_dict() for b in decision.boxes]}
        if decision.code == EBIKE_ENTRY:
            data["entry"] = f"{cam}/{zone}/{decision.track_id}"
        else:
            data["lane"] = f"{cam}/{zone}"
        if decision.box is not None:
            data.update(track_id=decision.track_id, label=decision.box.label, score=round(decision.box.score, 3),
                        box=decision.box.as_dict())
        if decision.dwell_s is not None:
            data["dwell_s"] = round(decision.dwell_s, 1)
        if decision.blocked_s is not None:
            data["blocked_s"] = round(decision.blocked_s, 1)
        # Staff read the catalogue's words (an e-bike is 电动车 whatever the detector called it); the
        # detector's class, track and boxes stay in data.
        text = decision_text(decision, cam)
        return Event(decision.code, frame.ts, self.camera.id, SEVERITY.get(decision.code, Severity.INFO),
                     data=data, evidence=images.upload, evidence_local=images.local, **text)

    async def _image_health_events(self, result: FrameResult, frame: FrameLike) -> list[Event]:
        events: list[Event] = []
        health = result.health
        for flag, on_code, off_code, value_key, value in (
            ("_frozen", "camera.frozen", "camera.frozen_cleared", "diff", health.diff),
            ("_covered", "camera.covered", "camera.covered_cleared", "std", health.std),
        ):
            now_on = health.frozen if flag == "_frozen" else health.covered
            if now_on == getattr(self, flag):
                continue
            setattr(self, flag, now_on)
            if now_on:
                images = await asyncio.to_thread(self._plain_evidence, frame, on_code)
                events.append(Event(on_code, frame.ts, self.camera.id, Severity.WARNING,
                                    data={"camera": self.camera.id, "active": True, value_key: round(value, 3)},
                                    evidence=images.upload, evidence_local=images.local,
                                    **say("camera.frozen" if on_code == "camera.frozen" else "camera.covered",
                                          camera=self.camera.id)))
            else:
                events.append(Event(off_code, frame.ts, self.camera.id, Severity.INFO,
                                    data={"camera": self.camera.id, "active": False},
                                    **say("camera.image_ok", camera=self.camera.id)))
        return events

    def _plain_evidence(self, frame: FrameLike, code: str) -> EvidenceImages:
        h, w = frame.image.shape[:2]
        outline = np.asarray([(0, 0), (w - 1, 0), (w - 1, h - 1), (0, h - 1)], np.float32)
        whole = Zone("frame", "frame", "frame", outline, "center", None, (), None)
        policy = self.pipeline.blur if self.pipeline is not None else EvidenceBlur()
        return render_copies(frame.image, whole, None, (), f"{self.camera.id} {code}", frame.ts, policy=policy,
                             people=self._last_people, quality=self.camera.evidence_quality, tz=self._tz)


def _resized(image: NDArray[np.uint8], size: tuple[int, int]) -> NDArray[np.uint8]:
    """``cv2.resize`` typed: its stubs return MatLike (no dtype); a uint8 image stays uint8."""
    return cast("NDArray[np.uint8]", cv2.resize(image, size))
