"""The camera ``Source``: one camera, from ONVIF/RTSP to events, readings and device status.

Lifecycle of ``CameraSource.run`` (runs until cancelled, like every source)::

    resolve  -- WS-Discovery (optional) -> ONVIF: clock offset, device info, profiles, stream or
                snapshot URI (or the explicit URI from config). Failure: DeviceStatus offline,
                reading reachable=0, jittered capped backoff, retry. Other cameras are unaffected.
    stream   -- a frame source (RTSP or snapshot polling) keeps only the newest frame.
    analyse  -- each new frame goes through ``CameraPipeline.process`` in the shared inference
                pool; decisions become ``Event``s with evidence JPEGs.
    health   -- every ``health.interval_s``: readings (reachable, stream_alive, frame_age_s, frozen,
                covered, fps, inference_s, clock_offset_s); each check is one availability attempt
                (edge.availability: every failure reported, successes until online_after).

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
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import cv2
import numpy as np

from drivers.camera.frames import Frame, FrameSource
from drivers.camera.rtsp import RtspFrameSource, redact, with_credentials
from drivers.camera.snapshot import SnapshotFrameSource
from drivers.onvif.client import MediaProfile, OnvifClient
from drivers.onvif.discovery import probe
from edge.availability import AvailabilityReporter
from edge.clock import Clock, SystemClock
from edge.config import EstateConfig
from edge.config.cameras import CameraConfig
from edge.errors import DeviceError, DeviceUnreachable
from edge.messages import say
from edge.records import Event, Reading, Severity
from edge.sources import Sink
from edge.vision.analytics import EBIKE_ENTRY, LANE_BLOCKED, LANE_CLEARED, Decision
from edge.vision.detections import Box
from edge.vision.detector import Detector, shared_detector
from edge.vision.evidence import render_evidence
from edge.vision.pipeline import CameraPipeline, FrameObserver, FrameResult
from edge.vision.privacy import blur_people
from edge.vision.streams import choose_profile
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


@dataclass(frozen=True, slots=True)
class LatestView:
    """The latest analysed frame as JPEG (zone pixels, not scaled) and its detections, for the panel."""

    jpeg: bytes
    width: int
    height: int
    ts: datetime
    boxes: tuple[Box, ...]


@dataclass(frozen=True, slots=True)
class ResolvedStream:
    mode: str  # "rtsp" | "snapshot"
    uri: str  # with credentials for RTSP (never logged: use redact)
    onvif: OnvifClient | None


FrameSourceFactory = Callable[[ResolvedStream, CameraConfig, Clock], FrameSource]


def default_frame_source(stream: ResolvedStream, camera: CameraConfig, clock: Clock) -> FrameSource:
    password = camera.password.get_secret_value() if camera.password else None
    if stream.mode == "snapshot":
        return SnapshotFrameSource(
            stream.uri, username=camera.username, password=password,
            interval_s=camera.stream.snapshot_interval_s, timeout_s=camera.timeout_s, clock=clock,
            name=f"camera:{camera.id}",
        )
    return RtspFrameSource(
        stream.uri, max_fps=camera.fps, clock=clock, open_timeout_s=camera.timeout_s,
        read_timeout_s=camera.timeout_s, name=f"camera:{camera.id}",
    )


def camera_fingerprint(camera: CameraConfig) -> str:
    """Digest of the camera's config; the password enters as its own hash, never in clear."""
    data = camera.model_dump(mode="json")
    secret = camera.password.get_secret_value() if camera.password else ""
    data["password"] = hashlib.sha256(secret.encode()).hexdigest()
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class CameraSource:
    def __init__(
        self,
        camera: CameraConfig,
        *,
        clock: Clock | None = None,
        registry: ModelRegistry | None = None,
        detector: Detector | None = None,
        frame_source_factory: FrameSourceFactory = default_frame_source,
        executor: ThreadPoolExecutor | None = None,
        backoff_max_s: float = 60.0,
        tz: tzinfo = UTC,
        collector: FrameObserver | None = None,
    ) -> None:
        self.camera = camera
        self._collector = collector
        self._clock = clock or SystemClock()
        self._registry = registry or ModelRegistry()
        self._detector = detector
        self._factory = frame_source_factory
        self._executor = executor
        self._backoff_max = backoff_max_s
        self._tz = tz  # the estate's time zone: evidence captions
        self._fingerprint = camera_fingerprint(camera)
        self.pipeline: CameraPipeline | None = None
        self.frame_source: FrameSource | None = None
        self.onvif: OnvifClient | None = None
        self._reachable = False
        self._online: bool | None = None
        self._availability = AvailabilityReporter(camera.id)
        self._frozen = False
        self._covered = False
        self._analysed = 0
        self._inferred_ms: list[float] = []
        self.last_result: FrameResult | None = None
        self._last_frame: Frame | None = None
        self._last_boxes: tuple[Box, ...] = ()
        self._last_people: tuple[Box, ...] = ()  # blurred in the live view / frozen evidence (privacy)

    @property
    def name(self) -> str:
        return f"camera:{self.camera.id}"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

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

    async def _discover(self) -> tuple[str, int]:
        d = self.camera.discovery
        assert d is not None
        devices = await probe(timeout=d.timeout_s, port=d.port, host=d.host, interface=d.interface)
        for device in devices:
            if device.endpoint == d.endpoint:
                parts = urlsplit(device.xaddrs[0])
                return parts.hostname or device.sender, parts.port or 80
        raise DeviceUnreachable(
            self.camera.id, f"no WS-Discovery answer from {d.endpoint} ({len(devices)} other device(s) answered)"
        )

    async def _resolve(self) -> ResolvedStream:
        cam = self.camera
        mode = cam.stream.mode
        explicit = cam.stream.snapshot_uri if mode == "snapshot" else cam.stream.rtsp_uri
        password = cam.password.get_secret_value() if cam.password else None
        onvif: OnvifClient | None = None
        if cam.onvif and (cam.host is not None or cam.discovery is not None):
            host, port = (cam.host, cam.port) if cam.host is not None else await self._discover()
            assert host is not None
            onvif = OnvifClient(cam.id, host, port, cam.username, password, timeout_s=cam.timeout_s)
            try:
                await onvif.connect()
                info = await onvif.device_information()
                log.info("camera %s: %s %s firmware %s, clock offset %.1f s", cam.id, info.manufacturer,
                         info.model, info.firmware, onvif.clock_offset_s or 0.0)
                if explicit is None:
                    profiles = await onvif.profiles()
                    token = cam.stream.profile or self._auto_profile(profiles, mode)
                    if mode == "rtsp" and cam.stream.request_fps:
                        await self._request_fps(onvif, token)
                    if token not in {p.token for p in profiles}:
                        raise DeviceError(cam.id, f"no media profile {token!r}", detail="stream.profile")
                    explicit = await (onvif.snapshot_uri(token) if mode == "snapshot" else onvif.stream_uri(token))
            except BaseException:
                await onvif.close()
                raise
        assert explicit is not None
        uri = with_credentials(explicit, cam.username, password) if mode == "rtsp" else explicit
        return ResolvedStream(mode, uri, onvif)

    def _auto_profile(self, profiles: list[MediaProfile], mode: str) -> str:
        """The smallest RTSP profile that fills the model (``edge.vision.streams``); zones scale to it."""
        main = profiles[0]
        if mode != "rtsp" or self.pipeline is None or not (main.width and main.height):
            return main.token
        spec = self.pipeline.detector.card.input
        crop = self.pipeline.crop_share(main.width, main.height)
        chosen = choose_profile(profiles, spec.width, spec.height, crop=crop)
        if chosen is not main:
            self.pipeline.zone_reference = self.camera.zones_size or (main.width, main.height)
            log.info("camera %s: analysing profile %s (%sx%s) instead of %s (%dx%d)", self.camera.id, chosen.token,
                     chosen.width, chosen.height, main.token, main.width, main.height)
        return chosen.token

    async def _request_fps(self, onvif: OnvifClient, token: str) -> None:
        """Ask the camera for the analysis rate on ``token``; a refusal only costs decoding, so it is logged."""
        wanted = max(1, math.ceil(self.camera.fps))
        try:
            now = await onvif.limit_frame_rate(token, wanted)
        except DeviceError as exc:
            log.warning("camera %s: could not lower profile %s to %d fps: %s", self.camera.id, token, wanted, exc)
            return
        log.info("camera %s: profile %s at %s fps", self.camera.id, token, now if now is not None else "unknown")

    # -- run -------------------------------------------------------------------------------------

    async def run(self, sink: Sink) -> None:
        detector = await asyncio.to_thread(self._build_detector)
        self.pipeline = CameraPipeline(self.camera, detector, tz=self._tz)
        self.pipeline.collector = self._collector
        backoff = 1.0
        while True:
            try:
                stream = await self._resolve()
            except DeviceError as exc:
                self._reachable = False
                await self._status(sink, False, str(exc))
                await sink.readings([self._reading("reachable", 0.0, "")])
                delay = backoff * random.uniform(0.8, 1.2)
                log.warning("camera %s: %s; retrying in %.0f s", self.camera.id, exc, delay)
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, self._backoff_max)
                continue
            backoff = 1.0
            self._reachable = True
            self.onvif = stream.onvif
            log.info("camera %s: %s stream %s", self.camera.id, stream.mode, redact(stream.uri))
            try:
                await self._stream(sink, stream)
            finally:
                if stream.onvif is not None:
                    await stream.onvif.close()

    async def _stream(self, sink: Sink, stream: ResolvedStream) -> None:
        source = self._factory(stream, self.camera, self._clock)
        self.frame_source = source
        await source.start()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._health_loop(sink, source), name=f"{self.name}:health")
                if stream.onvif is not None:
                    tasks.create_task(self._onvif_loop(stream.onvif), name=f"{self.name}:onvif")
                tasks.create_task(self._analyse_loop(sink, source), name=f"{self.name}:analyse")
        finally:
            await source.stop()

    async def _analyse_loop(self, sink: Sink, source: FrameSource) -> None:
        assert self.pipeline is not None
        loop = asyncio.get_running_loop()
        executor = self._executor or inference_pool()
        seq = 0
        while True:
            frame = await source.next_frame(seq, timeout=self.camera.health.stale_after_s)
            if frame is None:
                continue
            seq = frame.seq
            result = await loop.run_in_executor(executor, self.pipeline.process, frame.image, frame.mono, frame.ts)
            self.last_result = result
            self._last_frame = frame
            if result.detections is not None:
                self._last_boxes = tuple(result.detections.to_boxes())
                self._last_people = result.people
            self._analysed += 1
            if result.timings is not None:
                self._inferred_ms.append(result.timings.total_ms)
            events = [self._decision_event(d, jpeg, frame) for d, jpeg in zip(result.decisions, result.evidence,
                                                                              strict=True)]
            events += await self._image_health_events(result, frame)
            if events:
                await sink.events(events)

    async def _onvif_loop(self, onvif: OnvifClient) -> None:
        """Reachability and clock offset, every ``health.onvif_check_s``; failures only lower ``reachable``."""
        while True:
            await asyncio.sleep(self.camera.health.onvif_check_s)
            try:
                await onvif.measure_clock_offset()
                self._reachable = True
            except DeviceError as exc:
                if self._reachable:
                    log.warning("camera %s: ONVIF check failed: %s", self.camera.id, exc)
                self._reachable = False

    async def _health_loop(self, sink: Sink, source: FrameSource) -> None:
        interval = self.camera.health.interval_s
        last_analysed = self._analysed
        last_mono = started = self._clock.monotonic()
        # A stream just opened has no frame yet; that is not an outage (RTSP needs ~2 s to start).
        grace = self.camera.health.stale_after_s + self.camera.timeout_s
        while True:
            status = source.status()
            now = self._clock.monotonic()
            age = None if status.last_frame_mono is None else max(0.0, now - status.last_frame_mono)
            alive = age is not None and age <= self.camera.health.stale_after_s
            readings = [
                self._reading("reachable", 1.0 if (self._reachable or alive) else 0.0, ""),
                self._reading("stream_alive", 1.0 if alive else 0.0, ""),
            ]
            if age is not None:
                # Camera and gateway clocks differ by a little; a frame is never from the future.
                readings.append(self._reading("frame_age_s", round(max(age, 0.0), 3), "s"))
            if alive:
                readings += [
                    self._reading("frozen", 1.0 if self._frozen else 0.0, ""),
                    self._reading("covered", 1.0 if self._covered else 0.0, ""),
                ]
            span = now - last_mono
            if span > 0 and self._analysed >= last_analysed:
                readings.append(self._reading("fps", round((self._analysed - last_analysed) / span, 3), "1/s"))
            if self._inferred_ms:
                mean = sum(self._inferred_ms) / len(self._inferred_ms)
                # Named after the unit it reaches the platform in: durations are canonical in seconds
                # (edge.units), so an "_ms" point would carry seconds (issue 13 point 6).
                readings.append(self._reading("inference_s", round(mean / 1000, 5), "s"))
                self._inferred_ms.clear()
            if self.onvif is not None and self.onvif.clock_offset_s is not None:
                readings.append(self._reading("clock_offset_s", round(self.onvif.clock_offset_s, 1), "s"))
            last_analysed, last_mono = self._analysed, now
            await sink.readings(readings)
            if alive or age is not None or now - started >= grace:
                error = None if alive else (status.last_error or "no frames")
                await self._status(sink, alive, error)
            await asyncio.sleep(interval)

    async def latest_view(self) -> LatestView | None:
        """The newest analysed frame and the detections of the newest inferred one (panel snapshot hook)."""
        frame = self._last_frame
        if frame is None:
            return None
        image = frame.image
        if self.camera.privacy.blur_people_local and self._last_people:
            image = image.copy()
            blur_people(image, self._last_people)
        h, w = image.shape[:2]
        boxes = self._last_boxes
        reference = self.pipeline.zone_reference if self.pipeline is not None else None
        if reference is not None and reference != (w, h):
            # Shown in the pixels the zones were drawn in (a sub-stream frame scaled to the main stream's).
            sx, sy = reference[0] / w, reference[1] / h
            image = await asyncio.to_thread(cv2.resize, image, reference)
            boxes = tuple(replace(b, x1=b.x1 * sx, y1=b.y1 * sy, x2=b.x2 * sx, y2=b.y2 * sy) for b in boxes)
            w, h = reference
        ok, buf = await asyncio.to_thread(cv2.imencode, ".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            return None
        return LatestView(buf.tobytes(), w, h, frame.ts, boxes)

    # -- records ---------------------------------------------------------------------------------

    def _reading(self, point: str, value: float, unit: str) -> Reading:
        return Reading(self.camera.id, point, value, unit, self._clock.now())

    async def _status(self, sink: Sink, online: bool, error: str | None) -> None:
        """One health check is one attempt, reported by the contract every source follows (edge.availability)."""
        if online != self._online:
            log.log(logging.INFO if online else logging.WARNING, "camera %s: stream %s%s", self.camera.id,
                    "up" if online else "down", "" if online else f" ({error})")
        self._online = online
        now = self._clock.now()
        status = self._availability.succeeded(now) if online else self._availability.failed(now, error)
        if status is not None:
            await sink.device_status(status)

    def _decision_event(self, decision: Decision, jpeg: bytes, frame: Frame) -> Event:
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
        zone_name = decision.zone_name or zone
        if decision.code == EBIKE_ENTRY:
            text = say("fire.ebike_entry", camera=cam, zone=zone_name)
        elif decision.code == LANE_CLEARED:
            text = say("fire.lane_cleared", camera=cam, zone=zone_name, blocked_s=round(decision.blocked_s or 0))
        else:
            text = say("fire.lane_blocked", camera=cam, zone=zone_name, dwell_s=round(decision.dwell_s or 0))
        return Event(decision.code, frame.ts, self.camera.id, SEVERITY.get(decision.code, Severity.INFO),
                     data=data, evidence=jpeg, **text)

    async def _image_health_events(self, result: FrameResult, frame: Frame) -> list[Event]:
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
                jpeg = await asyncio.to_thread(self._plain_evidence, frame, on_code)
                events.append(Event(on_code, frame.ts, self.camera.id, Severity.WARNING,
                                    data={"camera": self.camera.id, "active": True, value_key: round(value, 3)},
                                    evidence=jpeg,
                                    **say("camera.frozen" if on_code == "camera.frozen" else "camera.covered",
                                          camera=self.camera.id)))
            else:
                events.append(Event(off_code, frame.ts, self.camera.id, Severity.INFO,
                                    data={"camera": self.camera.id, "active": False},
                                    **say("camera.image_ok", camera=self.camera.id)))
        return events

    def _plain_evidence(self, frame: Frame, code: str) -> bytes:
        h, w = frame.image.shape[:2]
        outline = np.asarray([(0, 0), (w - 1, 0), (w - 1, h - 1), (0, h - 1)], np.float32)
        whole = Zone("frame", "frame", "frame", outline, "center", None, (), None)
        people = self._last_people if self.pipeline is not None and self.pipeline.blur_evidence else ()
        return render_evidence(frame.image, whole, None, (), f"{self.camera.id} {code}", frame.ts,
                               quality=self.camera.evidence_quality, blur=people, tz=self._tz)


def build_camera_sources(config: EstateConfig, *, clock: Clock | None = None,
                         registry: ModelRegistry | None = None) -> list[CameraSource]:
    """One source per enabled camera (the camera counterpart of ``drivers.registry.build_sources``).

    Model cards, class names and weights are checked when each source starts (that needs files),
    and a problem there escapes ``run`` as a ``ConfigError`` naming the camera and zone.
    """
    from edge.training.collect import FrameCollector

    tz = ZoneInfo(config.estate.timezone)
    collector = FrameCollector.from_config(config.training, config.store.path) if config.training.collect else None
    return [CameraSource(c, clock=clock, registry=registry, tz=tz, collector=collector)
            for c in config.cameras if c.enabled]

