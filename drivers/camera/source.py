"""The camera ``Source``: one camera's acquisition, from ONVIF/RTSP to frames, health and device status.

Lifecycle of ``CameraSource.run`` (runs until cancelled, like every source)::

    prepare  -- the analyser loads what it needs (the model) first: choosing a profile needs its input size.
    resolve  -- WS-Discovery (optional) -> ONVIF: clock offset, device info, profiles, stream or
                snapshot URI (or the explicit URI from config). Failure: DeviceStatus offline,
                reading reachable=0, jittered capped backoff (``edge.backoff``), retry. Other
                cameras are unaffected.
    stream   -- a frame source (RTSP or snapshot polling) keeps only the newest frame.
    analyse  -- each new frame goes to the ``FrameAnalyser``; the events it returns go to the sink.
    health   -- every ``health.interval_s``: readings (reachable, stream_alive, frame_age_s, then the
                analyser's own points: frozen, covered, fps, inference_s; then clock_offset_s); each
                check is one availability attempt (edge.availability: every failure reported,
                successes until online_after).

What is not here: deciding anything about the pictures. The analyser is handed in (the daemon's is
``edge.vision.camera.CameraAnalyser``, joined to this source by ``edge.cameras``), so the driver
layer never imports the vision stage and ``edge.vision`` never imports a driver.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from drivers.camera.frames import Frame, FrameSource
from drivers.camera.rtsp import KEY_FRAME_GAP_FACTOR, RtspFrameSource, redact, with_credentials
from drivers.camera.snapshot import SnapshotFrameSource
from drivers.onvif.client import MediaProfile, OnvifClient
from drivers.onvif.discovery import probe
from edge.availability import AvailabilityReporter
from edge.backoff import Backoff
from edge.clock import Clock, SystemClock
from edge.config.cameras import CameraConfig
from edge.errors import DeviceError, DeviceUnreachable
from edge.messages import say
from edge.records import Event, Reading, Severity
from edge.sources import Sink
from edge.tasks import retry_after

log = logging.getLogger(__name__)

RESOLVE_BACKOFF_INITIAL_S = 1.0  # first wait after a failed resolve; doubled per failure up to backoff_max_s
RESOLVE_JITTER = 0.2  # each wait drawn within +-20 % of its step, so cameras that failed together spread out


class FrameAnalyser(Protocol):
    """What the source asks of the analysis side; it owns everything about the pictures' content."""

    async def prepare(self) -> None:
        """Load the model and build the pipeline; called once per ``run``, before the first resolve."""

    def choose_profile(self, profiles: Sequence[MediaProfile]) -> str:
        """The token of the RTSP media profile to analyse (``profiles[0]`` is the main stream)."""

    async def analyse(self, frame: Frame) -> list[Event]:
        """Analyse one frame; the events it decides (with evidence) for the sink."""

    def health_points(self, alive: bool, span_s: float) -> list[tuple[str, float, str]]:
        """(point, value, unit) for the health readings, ``span_s`` seconds after the previous call."""


A = TypeVar("A", bound=FrameAnalyser)


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
        read_timeout_s=camera.timeout_s, name=f"camera:{camera.id}", key_frames_only=camera.stream.key_frames_only,
    )


def camera_fingerprint(camera: CameraConfig) -> str:
    """Digest of the camera's config; the password enters as its own hash, never in clear."""
    data = camera.model_dump(mode="json")
    secret = camera.password.get_secret_value() if camera.password else ""
    data["password"] = hashlib.sha256(secret.encode()).hexdigest()
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class CameraSource(Generic[A]):
    """One camera as a ``Source``: acquisition here, analysis in ``analyser``."""

    def __init__(
        self,
        camera: CameraConfig,
        analyser: A,
        *,
        clock: Clock | None = None,
        frame_source_factory: FrameSourceFactory = default_frame_source,
        backoff_max_s: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        self.camera = camera
        self.analyser = analyser
        self._clock = clock or SystemClock()
        self._factory = frame_source_factory
        self._backoff = Backoff(RESOLVE_BACKOFF_INITIAL_S, backoff_max_s, jitter="spread", spread=RESOLVE_JITTER,
                                rng=rng)
        self._fingerprint = camera_fingerprint(camera)
        self.frame_source: FrameSource | None = None
        self.onvif: OnvifClient | None = None
        self._reachable = False
        self._online: bool | None = None
        self._sparse_key_frames_told: int | None = None  # the connection (reconnect count) last told about
        self._availability = AvailabilityReporter(camera.id)

    @property
    def name(self) -> str:
        return f"camera:{self.camera.id}"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    # -- resolve ---------------------------------------------------------------------------------

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
        """Snapshots use the main profile; for RTSP the analyser picks (the smallest that fills the model)."""
        if mode != "rtsp":
            return profiles[0].token
        return self.analyser.choose_profile(profiles)

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
        await self.analyser.prepare()
        self._backoff.reset()  # a restarted source starts its waits over, as a new one would
        while True:
            try:
                stream = await self._resolve()
            except DeviceError as exc:
                self._reachable = False
                await self._status(sink, False, str(exc))
                await sink.readings([self._reading("reachable", 0.0, "")])
                delay = self._backoff.next_delay()
                log.warning("camera %s: %s; retrying in %.0f s", self.camera.id, exc, delay)
                await retry_after(delay)
                continue
            self._backoff.reset()
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
        seq = 0
        while True:
            frame = await source.next_frame(seq, timeout=self.camera.health.stale_after_s)
            if frame is None:
                continue
            seq = frame.seq
            events = await self.analyser.analyse(frame)
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
            readings += [self._reading(point, value, unit)
                         for point, value, unit in self.analyser.health_points(alive, now - last_mono)]
            if self.onvif is not None and self.onvif.clock_offset_s is not None:
                readings.append(self._reading("clock_offset_s", round(self.onvif.clock_offset_s, 1), "s"))
            if status.key_frame_interval_s is not None:
                readings.append(self._reading("key_frame_interval_s", round(status.key_frame_interval_s, 2), "s"))
            last_mono = now
            await sink.readings(readings)
            if status.key_frame_interval_s is not None:
                await self._tell_sparse_key_frames(sink, status.key_frame_interval_s, status.reconnects)
            if alive or age is not None or now - started >= grace:
                error = None if alive else (status.last_error or "no frames")
                await self._status(sink, alive, error)
            await asyncio.sleep(interval)

    async def _tell_sparse_key_frames(self, sink: Sink, gap_s: float, connection: int) -> None:
        """Once per connection: key frames too far apart for the analysis interval (key-frames-only mode).

        Why an event and not only the reader's log line: in this mode a frame exists once per GOP, so
        a camera with a 2 s I-frame interval is analysed every 2 s whatever its ``fps`` says, and a
        dwell or a vote takes longer than the installer set. Staff and installers read the panel, not
        the log; the event says it there, in their language, with what to change.
        """
        interval_s = 1.0 / self.camera.fps
        if gap_s <= KEY_FRAME_GAP_FACTOR * interval_s or self._sparse_key_frames_told == connection:
            return
        self._sparse_key_frames_told = connection
        code = "camera.key_frames_sparse"
        await sink.events([Event(
            code=code, ts=self._clock.now(), device_id=self.camera.id, severity=Severity.WARNING,
            **say(code, camera=self.camera.id, gap_s=round(gap_s, 1), interval_s=round(interval_s, 1)),
            data={"key_frame_interval_s": round(gap_s, 2), "analysis_interval_s": round(interval_s, 3),
                  "settings": ["stream.key_frames_only", "fps"]},
        )])

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
