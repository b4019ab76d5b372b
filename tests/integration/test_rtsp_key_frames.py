"""The RTSP reader's key-frames-only mode, per camera, against the simulator's GStreamer server.

The simulator forces a key frame every second (as cameras keep their GOP in seconds) on a 10 fps
stream. A reader in key-frames-only mode must decode about one frame a second, a plain reader in
the same process, opened at the same time, all ten: the FFmpeg option travels in a process-wide
variable, so this is what shows it stays per camera (``drivers.camera.rtsp._OpenGate``).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time

import cv2

from drivers.camera.rtsp import _CAPTURE_OPTIONS_ENV, RtspFrameSource, open_capture
from drivers.camera.source import ResolvedStream, default_frame_source
from edge.clock import SystemClock
from edge.config.cameras import CameraConfig
from simulators.camera.sim import CameraSimulator, SimCameraSpec
from tests.helpers.platform import free_port

WINDOW_S = 4.0


async def decoded_rate(source: RtspFrameSource) -> float:
    """Frames decoded per second over ``WINDOW_S``, after the first frame arrived."""
    first = await source.next_frame(0, timeout=20)
    assert first is not None and first.image.ndim == 3
    start, grabbed = time.monotonic(), source.grabbed
    await asyncio.sleep(WINDOW_S)
    return (source.grabbed - grabbed) / (time.monotonic() - start)


async def test_key_frames_only_decodes_one_frame_a_second_beside_a_plain_reader() -> None:
    async with CameraSimulator([SimCameraSpec("lane", "lane_a4_traffic", fps=10)], rtsp_port=free_port()) as sim:
        url = sim.rtsp.url("lane", credentials=True)
        before = os.environ.get(_CAPTURE_OPTIONS_ENV)
        for _ in range(2):  # twice: the second pair opens while the variable was changed and restored once
            key = RtspFrameSource(url, max_fps=1, open_timeout_s=5, read_timeout_s=3, name="key",
                                  key_frames_only=True)
            plain = RtspFrameSource(url, max_fps=1, open_timeout_s=5, read_timeout_s=3, name="plain")
            async with key, plain:
                key_rate, plain_rate = await asyncio.gather(decoded_rate(key), decoded_rate(plain))
            assert 0.5 <= key_rate <= 2.0, key_rate
            assert plain_rate >= 7.0, plain_rate
            assert key.key_frame_interval_s is not None and 0.7 <= key.key_frame_interval_s <= 1.4
            assert plain.key_frame_interval_s is None  # measured only where it decides the analysis rate
        # The plain options are back for every later capture (the simulator's own setdefault included).
        assert os.environ.get(_CAPTURE_OPTIONS_ENV) == before or before is None
        assert "avdiscard" not in os.environ.get(_CAPTURE_OPTIONS_ENV, "")


async def test_a_gop_longer_than_the_analysis_interval_is_reported(caplog) -> None:
    """Analysis asked at 2 fps from a camera with a key frame a second: the reader says so, once."""
    async with CameraSimulator([SimCameraSpec("lane", "lane_a4_traffic", fps=10)], rtsp_port=free_port()) as sim:
        source = RtspFrameSource(sim.rtsp.url("lane", credentials=True), max_fps=2, open_timeout_s=5,
                                 read_timeout_s=3, name="cam-2fps", key_frames_only=True)
        with caplog.at_level("WARNING", logger="drivers.camera.rtsp"):
            async with source:
                assert await source.next_frame(0, timeout=20) is not None
                deadline = time.monotonic() + 15
                while source.key_frame_interval_s is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                await asyncio.sleep(2.5)  # more key frames: still one warning
    assert source.key_frame_interval_s is not None and 0.7 <= source.key_frame_interval_s <= 1.4
    warnings = [r.getMessage() for r in caplog.records if "key frames arrive every" in r.getMessage()]
    assert len(warnings) == 1 and "analysis interval of 0.5 s" in warnings[0], warnings


def _key_frame_capture(url: str) -> cv2.VideoCapture:
    """A bare key-frames-only capture, opened the way the reader opens one."""
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 3000]
    for _ in range(5):  # the simulator's media is prepared by the first DESCRIBE: an early open may time out
        capture = open_capture(url, params, key_frames_only=True)
        if capture.isOpened():
            return capture
        capture.release()
    raise AssertionError(f"cannot open {url} for key frames")


async def test_the_simulated_camera_sends_one_key_frame_a_second_and_the_stream_time_survives_a_stall() -> None:
    """One key frame per second of stream time, as a camera with a one-second GOP: not pairs 0.1 s apart
    (x264's own key-frame limit used to fire one frame before the forced key frame when arrival jitter
    pushed a second past ``fps`` frames). After the reader stalls for three seconds, the key frames it
    had missed arrive back to back, and their timestamps still say one second apart: this is why the
    reader measures the GOP in stream time (``_KeyFrameGaps``)."""
    async with CameraSimulator([SimCameraSpec("lane", "lane_a4_traffic", fps=10)], rtsp_port=free_port()) as sim:
        capture = await asyncio.to_thread(_key_frame_capture, sim.rtsp.url("lane", credentials=True))
        try:
            stamps, arrivals = [], []
            for n in range(12):
                assert await asyncio.to_thread(capture.grab), f"key frame {n}"
                stamps.append(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000)
                arrivals.append(time.monotonic())
                if n == 5:
                    await asyncio.sleep(3.0)  # the reader falls behind: key frames queue up in the socket
        finally:
            capture.release()
    gaps = [b - a for a, b in itertools.pairwise(stamps[1:])]  # from the second: the first is the open's
    assert all(0.85 <= gap <= 1.15 for gap in gaps), gaps
    assert min(b - a for a, b in itertools.pairwise(arrivals[6:])) < 0.3  # they did arrive in a burst


def test_the_camera_setting_reaches_the_reader() -> None:
    camera = CameraConfig.model_validate({
        "id": "lane", "name": "lane", "location": {"building": "1"}, "onvif": False,
        "stream": {"rtsp_uri": "rtsp://127.0.0.1:1/lane", "key_frames_only": True},
    })
    stream = ResolvedStream("rtsp", "rtsp://127.0.0.1:1/lane", None)
    source = default_frame_source(stream, camera, SystemClock())
    assert isinstance(source, RtspFrameSource) and source.key_frames_only
    plain = camera.model_copy(update={"stream": camera.stream.model_copy(update={"key_frames_only": False})})
    source = default_frame_source(stream, plain, SystemClock())
    assert isinstance(source, RtspFrameSource) and not source.key_frames_only
