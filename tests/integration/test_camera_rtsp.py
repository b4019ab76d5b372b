"""RTSP through OpenCV against the simulator's GStreamer server: frames, latest-frame-only, reconnect,
login (refused logins reported as such), monotonic timestamps."""

from __future__ import annotations

import asyncio
import time

import cv2
import numpy as np

from drivers.camera.auth import rtsp_login_refused
from drivers.camera.rtsp import RtspFrameSource, redact, with_credentials
from simulators.camera.sim import CameraSimulator, SimCameraSpec
from tests.helpers.platform import free_port
from tests.helpers.waiting import eventually


def test_credentials_are_quoted_and_redacted() -> None:
    url = with_credentials("rtsp://10.0.0.5:554/live", "admin", "p@ss:word")
    assert url == "rtsp://admin:p%40ss%3Aword@10.0.0.5:554/live"
    assert redact(url) == "rtsp://***@10.0.0.5:554/live"


async def test_rtsp_frames_latest_only_and_reconnect_after_restart() -> None:
    async with CameraSimulator([SimCameraSpec("lobby", "door_b2_motorcycle", fps=10)], rtsp_port=free_port()) as sim:
        source = RtspFrameSource(sim.rtsp.url("lobby", credentials=True), max_fps=5, open_timeout_s=5, read_timeout_s=2,
                                 backoff_min_s=0.2, backoff_max_s=1.0, name="test-rtsp")
        async with source:
            first = await source.next_frame(0, timeout=20)
            assert first is not None and first.image.shape == (426, 640, 3)
            assert source.backend == "FFMPEG"

            # A slow consumer: it never gets a backlog, only the newest frame.
            await eventually(lambda: source.status().dropped >= 4, what="frames published while nobody reads")
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


async def test_rtsp_needs_the_login_and_a_refused_one_is_reported_as_such() -> None:
    async with CameraSimulator([SimCameraSpec("lobby", "door_b2_motorcycle", fps=5)], rtsp_port=free_port(),
                               password="Rtsp-pa55") as sim:
        # In a thread, as the reader does: the simulator's frame feed must keep running meanwhile.
        assert not await asyncio.to_thread(rtsp_login_refused, sim.rtsp.url("lobby", credentials=True))
        assert await asyncio.to_thread(rtsp_login_refused, sim.rtsp.url("lobby"))  # no credentials at all
        wrong = with_credentials(sim.rtsp.url("lobby"), "admin", "guess")
        assert await asyncio.to_thread(rtsp_login_refused, wrong)
        source = RtspFrameSource(wrong, max_fps=5, open_timeout_s=3, read_timeout_s=2, backoff_min_s=5,
                                 name="test-rtsp-auth")
        async with source:
            assert await source.next_frame(0, timeout=4) is None
            deadline = time.monotonic() + 10
            while source.status().last_error is None and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        assert "authentication refused (RTSP 401)" in (source.status().last_error or "")
        assert "guess" not in (source.status().last_error or "")
    assert not rtsp_login_refused(f"rtsp://127.0.0.1:{free_port()}/nobody")  # nothing there: not a login problem


def read_timestamps(url: str, frames: int) -> list[float]:
    capture = cv2.VideoCapture(url, cv2.CAP_ANY, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 10000,
                                                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000])
    try:
        assert capture.isOpened()
        stamps = []
        for _ in range(frames):
            assert capture.grab()
            stamps.append(capture.get(cv2.CAP_PROP_POS_MSEC))
        return stamps
    finally:
        capture.release()


async def test_stream_timestamps_are_monotonic() -> None:
    async with CameraSimulator([SimCameraSpec("lobby", "door_b2_motorcycle", fps=15)], rtsp_port=free_port()) as sim:
        stamps = await asyncio.to_thread(read_timestamps, sim.rtsp.url("lobby", credentials=True), 30)
    steps = np.diff(stamps[1:])  # OpenCV reports 0 for the first frame whatever its timestamp
    assert (steps > 0).all(), stamps
    assert 20 < float(np.median(steps)) < 120  # about 1/15 s apart
