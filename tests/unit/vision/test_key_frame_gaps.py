"""The key-frames-only reader's GOP check (``drivers.camera.rtsp._KeyFrameGaps``) on made-up arrival and
stream times, and how the camera source tells it (a health reading, one event per connection)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from drivers.camera.frames import FrameSourceStatus
from drivers.camera.rtsp import _KeyFrameGaps
from drivers.camera.source import CameraSource
from edge.clock import SystemClock
from edge.config.cameras import CameraConfig
from edge.records import Severity
from edge.tasks import cancel_and_wait
from tests.helpers.sink import RecordingSink
from tests.helpers.waiting import eventually


def feed(gaps: _KeyFrameGaps, times: list[float], stamps: list[float] | None = None) -> float | None:
    """Key frames arriving at ``times``, stamped ``stamps`` (the same as the arrivals when not given)."""
    result = None
    for t, stamp in zip(times, times if stamps is None else stamps, strict=True):
        result = gaps.add(t, stamp)
    return result


@pytest.mark.parametrize(("gop_s", "interval_s", "warns"), [(1.0, 1.0, False), (2.0, 1.0, True), (1.0, 0.5, True),
                                                            (0.5, 1.0, False)])
def test_warns_once_when_key_frames_come_less_often_than_analysis(caplog, gop_s: float, interval_s: float,
                                                                  warns: bool) -> None:
    gaps = _KeyFrameGaps("cam", interval_s)
    with caplog.at_level(logging.WARNING, logger="drivers.camera.rtsp"):
        assert feed(gaps, [0.0, 0.01, 0.02]) is None  # too few to judge (a connection starts with a burst)
        median = feed(gaps, [0.02 + gop_s * k for k in range(1, 30)])
    assert median == pytest.approx(gop_s)
    warned = [r for r in caplog.records if "key frames arrive every" in r.getMessage()]
    assert len(warned) == (1 if warns else 0)


def test_a_reader_that_fell_behind_still_measures_the_cameras_gop() -> None:
    """Key frames one second apart in the stream that reach a stalled reader back to back (a busy box):
    the GOP is the stream's one second, not the few milliseconds between arrivals."""
    gaps = _KeyFrameGaps("cam", 1.0)
    stamps = [float(k) for k in range(12)]
    arrivals = [20.0 + 0.005 * k for k in range(12)]  # all twelve queued up while the reader was stalled
    assert feed(gaps, arrivals, stamps) == pytest.approx(1.0)


@pytest.mark.parametrize("stamp", [0.0, -0.001], ids=["no-timestamps", "unknown-position"])
def test_a_stream_without_timestamps_is_measured_by_arrival(stamp: float) -> None:
    gaps = _KeyFrameGaps("cam", 0.5)
    times = [2.0 * k for k in range(10)]
    assert feed(gaps, times, [stamp] * len(times)) == pytest.approx(2.0)


def test_a_jump_in_the_streams_clock_counts_as_its_arrival_gap() -> None:
    """A camera that restarts its clock (or wraps it) must not show a GOP of hours or of minus hours."""
    gaps = _KeyFrameGaps("cam", 1.0)
    times = [float(k) for k in range(8)]
    stamps = [100.0, 101.0, 102.0, 3.0, 4.0, 5.0, 7205.0, 7206.0]
    feed(gaps, times, stamps)
    assert list(gaps.gaps) == [1.0] * 7


class _Stream:
    """A frame source that only reports status: frames arriving, and the key-frame gap the reader measured."""

    def __init__(self, clock: SystemClock) -> None:
        self.clock = clock
        self.gap_s: float | None = 2.0
        self.reconnects = 0

    def status(self) -> FrameSourceStatus:
        return FrameSourceStatus(True, 10, 0, self.reconnects, self.clock.monotonic(), None, self.gap_s)


class _NoAnalysis:
    def health_points(self, alive: bool, span_s: float) -> list[tuple[str, float, str]]:
        return []


async def test_sparse_key_frames_are_told_once_per_connection_in_the_estate_language() -> None:
    """The camera's health loop turns the reader's measurement into a reading and, when the GOP is
    longer than the analysis interval allows, one catalogue event per connection (the panel shows it)."""
    camera = CameraConfig.model_validate({
        "id": "CAM-LANE", "name": "lane", "location": {"building": "1"}, "onvif": False, "fps": 2,
        "health": {"interval_s": 0.01}, "stream": {"rtsp_uri": "rtsp://127.0.0.1:1/lane", "key_frames_only": True},
    })
    clock = SystemClock()
    source = CameraSource(camera, _NoAnalysis(), clock=clock)  # type: ignore[type-var]
    stream, sink = _Stream(clock), RecordingSink()
    health = asyncio.create_task(source._health_loop(sink, stream))  # type: ignore[arg-type]

    async def health_rounds(n: int) -> None:
        start = len(sink.of("CAM-LANE", "key_frame_interval_s"))
        await eventually(lambda: len(sink.of("CAM-LANE", "key_frame_interval_s")) >= start + n,
                               what=f"{n} more health rounds")

    try:
        await health_rounds(5)
        (told,) = sink.events_seen  # a 2 s GOP at 2 fps: once, not every round
        assert told.code == "camera.key_frames_sparse" and told.severity == Severity.WARNING
        assert told.data["key_frame_interval_s"] == 2.0 and told.data["analysis_interval_s"] == 0.5
        assert "关键帧间隔约 2 秒" in told.message and "分析间隔 0.5 秒" in told.message
        assert sink.of("CAM-LANE", "key_frame_interval_s")[-1].value == 2.0
        stream.reconnects = 1  # a new connection: said again
        await health_rounds(5)
        assert sink.event_codes() == ["camera.key_frames_sparse"] * 2
        stream.reconnects, stream.gap_s = 2, 0.7  # within 1.5 analysis intervals: nothing to say
        await health_rounds(5)
        stream.gap_s = None  # a plain reader measures nothing: no reading either
        count = len(sink.of("CAM-LANE", "key_frame_interval_s"))
        await eventually(lambda: len(sink.of("CAM-LANE", "stream_alive")) > count + 10, what="rounds")
        assert len(sink.of("CAM-LANE", "key_frame_interval_s")) == count
        assert len(sink.events_seen) == 2
    finally:
        await cancel_and_wait(health)
