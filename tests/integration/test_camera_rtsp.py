"""RTSP through OpenCV against the simulator's GStreamer server: frames, latest-frame-only, reconnect."""

from __future__ import annotations

import asyncio
import time

from drivers.camera.rtsp import RtspFrameSource, redact, with_credentials
from simulators.camera.sim import CameraSimulator, SimCameraSpec
from tests.helpers.platform import free_port


def test_credentials_are_quoted_and_redacted() -> None:
    url = with_credentials("rtsp://10.0.0.5:554/live", "admin", "p@ss:word")
    assert url == "rtsp://admin:p%40ss%3Aword@10.0.0.5:554/live"
    assert redact(url) == "rtsp://***@10.0.0.5:554/live"


async def test_rtsp_frames_latest_only_and_reconnect_after_restart() -> None:
    async with CameraSimulator([SimCameraSpec("lobby", "door_b2_motorcycle", fps=10)], rtsp_port=free_port()) as sim:
        source = RtspFrameSource(sim.rtsp.url("lobby"), max_fps=5, open_timeout_s=5, read_timeout_s=2,
                                 backoff_min_s=0.2, backoff_max_s=1.0, name="test-rtsp")
        async with source:
            first = await source.next_frame(0, timeout=20)
            assert first is not None and first.image.shape == (426, 640, 3)
            assert source.backend == "FFMPEG"

            # A slow consumer: it never gets a backlog, only the newest frame.
            await asyncio.sleep(1.5)
            late = await source.next_frame(first.seq, timeout=5)
            assert late is not None and late.seq >= first.seq + 5
            assert time.monotonic() - late.mono < 0.5
            assert source.status().dropped >= 4

            # The camera's streaming server restarts: the reader notices and reconnects by itself.
            await sim.restart_rtsp()
            deadline = time.monotonic() + 30
            after = late
            while time.monotonic() < deadline and source.status().reconnects == 0:
                frame = await source.next_frame(after.seq, timeout=1)
                after = frame or after
            status = source.status()
            assert status.reconnects >= 1
            resumed = await source.next_frame(after.seq, timeout=20)
            assert resumed is not None and resumed.seq > late.seq
            assert source.status().connected
