"""Several simulated ONVIF cameras in one process: scenario frames -> RTSP + snapshots + ONVIF + discovery.

Per camera: a scenario renders frames in real time at ``fps`` (scene time runs ``time_scale`` x
slower or faster, see ``scenarios``); each frame is JPEG-encoded once and both kept as the
snapshot and fed to the shared GStreamer RTSP child, which serves it as H.264 at
``rtsp://host:rtsp_port/<camera id>``. The camera's ONVIF services listen on their own HTTP port
(as separate cameras do); one WS-Discovery responder answers for all of them.

A camera may also serve a *sub-stream* (``sub_size``, as most IP cameras do: a small second
encoding of the same picture for analytics and previews) at ``rtsp://host:rtsp_port/<id>_sub``,
announced as a second ONVIF profile; ``main_size`` rescales the main stream (say the scenario's
1168x750 to a 1280x720 "720p" main stream for benchmarks).

``noise`` adds a real sensor's temporal noise (Gaussian, that many grey levels standard deviation,
fresh in every frame): a scenario built from one photo is otherwise perfectly still between
frames, so its H.264 P-frames are nearly empty and decode several times cheaper than a real
camera's, whose sensor noise (and the texture it sits on) fills every frame with residuals. A
noise of 3-4 grey levels is what a typical 1/2.8" estate camera shows by day (more at dusk); the
capacity bench serves it so that the decoding it measures costs what a camera's stream does.
``bitrate_scale`` multiplies the encoder's bitrate (default about 2 Mbit/s at 720p, 0.5 Mbit/s at
640x360, a camera's factory setting); decoding cost follows the bitrate far more than the content.

Like a real camera, the simulator is *ready* (``start`` returns) only once every camera has a
frame, so a snapshot can be served; RTSP needs the camera's user name and password unless
``rtsp_auth=False``.

``restart_rtsp`` kills and restarts the RTSP child (a camera reboot, as far as the stream is
concerned); ``stop_rtsp``/``start_rtsp`` leave a gap in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

import cv2

from simulators.camera.discovery import Announcement, DiscoveryResponder, endpoint_for
from simulators.camera.noise import SensorNoise
from simulators.camera.onvif_service import CameraIdentity, MediaInfo, OnvifCameraService, StreamProfile
from simulators.camera.rtsp import MountSpec, RtspServerProcess
from simulators.camera.scenarios import Scenario, scenario

log = logging.getLogger(__name__)


@dataclass
class SimCameraSpec:
    id: str
    scenario: str
    onvif_port: int = 0  # 0: any free port
    time_scale: float = 1.0
    fps: int = 10
    clock_offset_s: float = 0.0
    hostile: bool = False
    location: str = "estate"
    http_auth: str = "digest"  # snapshots: "digest" or "basic"
    clock_needs_auth: bool = False  # GetSystemDateAndTime needs a login too
    auth_failure_status: int = 400  # 401: refused logins answered with HTTP 401
    main_size: tuple[int, int] | None = None  # (width, height) of the main stream; None: the scenario's
    sub_size: tuple[int, int] | None = None  # (width, height) of a sub-stream; None: no sub-stream
    noise: float = 0.0  # sensor noise, grey levels (standard deviation), fresh in every frame; 0: none
    bitrate_scale: float = 1.0  # x the encoder's default bitrate (about 2 Mbit/s at 720p, by pixel count)


@dataclass
class SimCamera:
    spec: SimCameraSpec
    scenario: Scenario
    service: OnvifCameraService
    index: int
    started: float = 0.0
    frames: int = 0
    dropped: int = 0
    jpeg: bytes | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    has_frame: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    mounts: list[tuple[int, tuple[int, int] | None]] = field(default_factory=list)  # (mount index, size)
    sensor: SensorNoise = field(default_factory=SensorNoise, repr=False)

    def scene_time(self) -> float:
        return time.monotonic() - self.started

    def restart_scenario(self) -> None:
        self.started = time.monotonic()


class CameraSimulator:
    def __init__(
        self,
        cameras: list[SimCameraSpec],
        *,
        host: str = "127.0.0.1",
        rtsp_port: int = 8554,
        discovery_port: int | None = None,
        username: str = "admin",
        password: str = "admin",
        jpeg_quality: int = 85,
        rtsp_auth: bool = True,
    ) -> None:
        if not cameras:
            raise ValueError("at least one camera")
        self.host = host
        self.rtsp_port = rtsp_port
        self.discovery_port = discovery_port
        self.username = username
        self.password = password
        self.jpeg_quality = jpeg_quality
        self.cameras: dict[str, SimCamera] = {}
        mounts: list[MountSpec] = []
        for index, spec in enumerate(cameras):
            for size in (spec.main_size, spec.sub_size):
                if size is not None and (size[0] % 2 or size[1] % 2):
                    raise ValueError(f"camera {spec.id}: stream size {size[0]}x{size[1]} must be even (H.264 4:2:0)")
            story = scenario(spec.scenario, spec.time_scale)
            cam = SimCamera(spec, story, None, index)  # type: ignore[arg-type]
            width, height = spec.main_size or (story.width, story.height)
            profiles = [StreamProfile("main", "MainStream", width, height, spec.fps,
                                      f"rtsp://{host}:{rtsp_port}/{spec.id}")]
            cam.mounts.append((len(mounts), spec.main_size))
            mounts.append(MountSpec(spec.id, width, height, spec.fps, spec.bitrate_scale))
            if spec.sub_size is not None:
                sub_w, sub_h = spec.sub_size
                profiles.append(StreamProfile("sub", "SubStream", sub_w, sub_h, spec.fps,
                                              f"rtsp://{host}:{rtsp_port}/{spec.id}_sub"))
                cam.mounts.append((len(mounts), spec.sub_size))
                mounts.append(MountSpec(f"{spec.id}_sub", sub_w, sub_h, spec.fps, spec.bitrate_scale))
            media = MediaInfo(width, height, spec.fps, profiles[0].stream_uri, f"/onvif/snapshot/{spec.id}.jpg",
                              profiles)
            scopes = ("onvif://www.onvif.org/type/video_encoder", f"onvif://www.onvif.org/name/{spec.id}",
                      f"onvif://www.onvif.org/location/{spec.location}",
                      "onvif://www.onvif.org/hardware/SimCam-1", "onvif://www.onvif.org/Profile/Streaming")
            cam.service = OnvifCameraService(
                CameraIdentity(spec.id, serial=f"SIM-{spec.id}"), media, lambda c=cam: c.jpeg,
                username=username, password=password, host=host, port=spec.onvif_port,
                clock_offset_s=spec.clock_offset_s, hostile=spec.hostile, http_auth=spec.http_auth,
                clock_needs_auth=spec.clock_needs_auth, auth_failure_status=spec.auth_failure_status,
                scopes=scopes,
            )
            self.cameras[spec.id] = cam
        credentials = (username, password) if rtsp_auth else None
        self.rtsp = RtspServerProcess(rtsp_port, mounts, host, credentials=credentials)
        self.discovery: DiscoveryResponder | None = None

    async def __aenter__(self) -> CameraSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        for cam in self.cameras.values():
            await cam.service.start()
        await self.rtsp.start()
        if self.discovery_port is not None:
            items = [
                Announcement(endpoint_for(cam.spec.id), f"{cam.service.base_url}/onvif/device_service",
                             cam.service.scopes)
                for cam in self.cameras.values()
            ]
            self.discovery = DiscoveryResponder(items, port=self.discovery_port, interface=self.host)
            await self.discovery.start()
        for cam in self.cameras.values():
            cam.restart_scenario()
            cam.task = asyncio.create_task(self._feed(cam), name=f"sim-camera-{cam.spec.id}")
        # Ready only once every camera can serve a snapshot (its first frame is encoded).
        async with asyncio.timeout(30):
            for cam in self.cameras.values():
                await cam.has_frame.wait()

    async def stop(self) -> None:
        for cam in self.cameras.values():
            if cam.task is not None:
                cam.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await cam.task
                cam.task = None
        if self.discovery is not None:
            await self.discovery.stop()
        await self.rtsp.stop()
        for cam in self.cameras.values():
            await cam.service.stop()

    async def restart_rtsp(self) -> None:
        await self.rtsp.restart()

    async def stop_rtsp(self) -> None:
        await self.rtsp.stop()

    async def start_rtsp(self) -> None:
        await self.rtsp.start()

    def endpoint(self, camera_id: str) -> str:
        return endpoint_for(camera_id)

    def _encode(self, cam: SimCamera, t: float) -> list[bytes]:
        """One JPEG per stream of ``cam`` (main first), each at its stream's size (with sensor noise)."""
        frame = cam.scenario.render(t)
        out: list[bytes] = []
        for _, size in cam.mounts:
            image = frame if size is None else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            if cam.spec.noise > 0:
                image = cam.sensor.apply(image, cam.spec.noise)
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if not ok:
                raise RuntimeError("JPEG encoding failed")
            out.append(buf.tobytes())
        return out

    async def _feed(self, cam: SimCamera) -> None:
        """Render, encode and hand out one frame per 1/fps of wall time; late frames are skipped.

        Each stream carries its profile's current frame rate (a client may lower it through
        SetVideoEncoderConfiguration): a stream is sent a frame only once 1/its fps has passed.
        """
        period = 1.0 / cam.spec.fps
        next_at = time.monotonic()
        profiles = cam.service.media.profiles or []
        due = [0.0] * len(cam.mounts)
        while True:
            jpegs = await asyncio.to_thread(self._encode, cam, cam.scene_time())
            cam.jpeg = jpegs[0]
            cam.has_frame.set()
            cam.frames += 1
            sent_at = time.monotonic()
            for k, ((mount, _), jpeg) in enumerate(zip(cam.mounts, jpegs, strict=True)):
                if sent_at + period * 0.5 < due[k]:
                    continue
                due[k] = max(due[k], sent_at - period) + 1.0 / profiles[k].fps
                if not self.rtsp.send(mount, jpeg):
                    cam.dropped += 1
            next_at += period
            now = time.monotonic()
            if next_at < now:  # fell behind: skip the missed frames instead of bursting
                next_at = now
            await asyncio.sleep(next_at - now)
