"""Several simulated ONVIF cameras in one process: scenario frames -> RTSP + snapshots + ONVIF + discovery.

Per camera: a scenario renders frames in real time at ``fps`` (scene time runs ``time_scale`` x
slower or faster, see ``scenarios``); each frame is JPEG-encoded once and both kept as the
snapshot and fed to the shared GStreamer RTSP child, which serves it as H.264 at
``rtsp://host:rtsp_port/<camera id>``. The camera's ONVIF services listen on their own HTTP port
(as separate cameras do); one WS-Discovery responder answers for all of them.

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
from simulators.camera.onvif_service import CameraIdentity, MediaInfo, OnvifCameraService
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
            story = scenario(spec.scenario, spec.time_scale)
            mounts.append(MountSpec(spec.id, story.width, story.height, spec.fps))
            media = MediaInfo(story.width, story.height, spec.fps, f"rtsp://{host}:{rtsp_port}/{spec.id}",
                              f"/onvif/snapshot/{spec.id}.jpg")
            cam = SimCamera(spec, story, None, index)  # type: ignore[arg-type]
            cam.service = OnvifCameraService(
                CameraIdentity(spec.id, serial=f"SIM-{spec.id}"), media, lambda c=cam: c.jpeg,
                username=username, password=password, host=host, port=spec.onvif_port,
                clock_offset_s=spec.clock_offset_s, hostile=spec.hostile,
            )
            self.cameras[spec.id] = cam
        self.rtsp = RtspServerProcess(rtsp_port, mounts, host)
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
                Announcement(
                    endpoint_for(cam.spec.id), f"{cam.service.base_url}/onvif/device_service",
                    ("onvif://www.onvif.org/type/video_encoder", f"onvif://www.onvif.org/name/{cam.spec.id}",
                     f"onvif://www.onvif.org/location/{cam.spec.location}"),
                )
                for cam in self.cameras.values()
            ]
            self.discovery = DiscoveryResponder(items, port=self.discovery_port, interface=self.host)
            await self.discovery.start()
        for cam in self.cameras.values():
            cam.restart_scenario()
            cam.task = asyncio.create_task(self._feed(cam), name=f"sim-camera-{cam.spec.id}")

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

    def _encode(self, cam: SimCamera, t: float) -> bytes:
        frame = cam.scenario.render(t)
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return buf.tobytes()

    async def _feed(self, cam: SimCamera) -> None:
        """Render, encode and hand out one frame per 1/fps of wall time; late frames are skipped."""
        period = 1.0 / cam.spec.fps
        next_at = time.monotonic()
        while True:
            jpeg = await asyncio.to_thread(self._encode, cam, cam.scene_time())
            cam.jpeg = jpeg
            cam.frames += 1
            if not self.rtsp.send(cam.index, jpeg):
                cam.dropped += 1
            next_at += period
            now = time.monotonic()
            if next_at < now:  # fell behind: skip the missed frames instead of bursting
                next_at = now
            await asyncio.sleep(next_at - now)
