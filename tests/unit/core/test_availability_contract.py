"""One offline/online contract for every kind of source (issue 10 defect 3).

A dead camera stream once changed only its health readings: the camera reported "offline" once
per outage while the rule engine waits for ``offline_after_failures`` failed attempts, so
``device.offline`` was never raised. Here each kind of source (a camera whose stream stalls and
comes back, the synthetic bus, the shared ``AvailabilityReporter`` that Modbus uses) is run into the
real rule engine: an outage raises ``device.offline`` exactly once, recovery clears it once.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from drivers.camera.frames import Frame, FrameSourceStatus
from drivers.synthetic.driver import SyntheticSource
from edge.availability import AvailabilityReporter
from edge.cameras import camera_source
from edge.clock import ManualClock
from edge.config import EstateConfig
from edge.config.cameras import CameraConfig
from edge.records import DeviceStatus
from edge.rules import RuleEngine, TransitionKind
from tests.helpers.sink import RecordingSink

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _engine() -> RuleEngine:
    return RuleEngine.from_config(EstateConfig.model_validate({
        "estate": {"id": "e1", "name": "E", "gateway_id": "g1"},
        "platform": {"url": "https://platform.example", "client_id": "c"},
        "buses": [{"kind": "synthetic", "id": "b"}],
        "devices": [],
    }))


def _offline_transitions(statuses: list[DeviceStatus]) -> list[tuple[str, TransitionKind]]:
    engine = _engine()
    return [(t.code, t.kind) for s in statuses for t in engine.on_status(s)]


class DyingStream:
    """Frames for a while, then a stalled stream (no frames, an error), then frames again."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.alive = True
        self.seq = 0
        self.last_mono: float | None = None
        self.image = np.zeros((64, 64, 3), np.uint8)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def next_frame(self, after_seq: int, timeout: float) -> Frame | None:
        await asyncio.sleep(0.01)
        if not self.alive:
            return None
        self.seq += 1
        self.last_mono = self.clock.monotonic()
        return Frame(self.image, self.seq, self.last_mono, self.clock.now())

    def status(self) -> FrameSourceStatus:
        return FrameSourceStatus(self.alive, self.seq, 0, 0, self.last_mono, None if self.alive else "read timeout")


async def _until(check, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_camera_whose_stream_dies_raises_device_offline_once_and_clears_once() -> None:
    clock = ManualClock(T0)
    stream = DyingStream(clock)
    cfg = CameraConfig.model_validate({
        "id": "cam-1", "name": "cam", "location": {"building": "1"}, "onvif": False,
        "stream": {"rtsp_uri": "rtsp://127.0.0.1/x"}, "zones": [],
        "health": {"interval_s": 0.02, "stale_after_s": 5},
    })
    sink = RecordingSink()
    source = camera_source(cfg, clock=clock, frame_source_factory=lambda *_: stream)
    task = asyncio.create_task(source.run(sink))
    try:
        await _until(lambda: any(s.online for s in sink.statuses))
        stream.alive = False
        clock.advance(6)  # older than stale_after_s: the stream is not alive
        await _until(lambda: sum(not s.online for s in sink.statuses) >= 5)
        stream.alive = True
        await _until(lambda: sink.statuses[-1].online and sum(s.online for s in sink.statuses) >= 3)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert _offline_transitions(sink.statuses) == [("device.offline", TransitionKind.RAISE),
                                                  ("device.offline", TransitionKind.CLEAR)]
    offline = [s for s in sink.statuses if not s.online]
    assert offline[0].error == "read timeout"


async def test_the_synthetic_bus_follows_the_same_contract() -> None:
    config = EstateConfig.model_validate({
        "estate": {"id": "e1", "name": "E", "gateway_id": "g1"},
        "platform": {"url": "https://platform.example", "client_id": "c"},
        "buses": [{"kind": "synthetic", "id": "b", "fail_devices": ["dead"]}],
        "devices": [{"id": d, "name": d, "bus": "b", "category": "electricity", "location": {"building": "1"},
                     "poll_interval_s": 0.01} for d in ("dead", "ok")],
    })
    sink = RecordingSink()
    source = SyntheticSource(config.buses[0], config.devices, config)  # type: ignore[arg-type]
    task = asyncio.create_task(source.run(sink))
    try:
        await _until(lambda: sum(s.device_id == "dead" for s in sink.statuses) >= 4
                     and sum(s.device_id == "ok" for s in sink.statuses) >= 2)
        await asyncio.sleep(0.1)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    healthy = [s for s in sink.statuses if s.device_id == "ok"]
    assert len(healthy) == 2, "a healthy device reports online_after successes, then nothing"
    assert _offline_transitions(sink.statuses) == [("device.offline", TransitionKind.RAISE)]


def test_the_reporter_reports_every_failure_and_successes_until_online_after() -> None:
    reporter = AvailabilityReporter("d", online_after=2)
    ts = [T0 + timedelta(seconds=i) for i in range(10)]
    out = [reporter.failed(ts[0], "x"), reporter.failed(ts[1], "x"), reporter.failed(ts[2], "x"),
           reporter.succeeded(ts[3]), reporter.succeeded(ts[4]), reporter.succeeded(ts[5]),
           reporter.failed(ts[6], "y"), reporter.succeeded(ts[7]), reporter.succeeded(ts[8]),
           reporter.succeeded(ts[9])]
    assert [None if s is None else s.online for s in out] == [False, False, False, True, True, None, False, True,
                                                              True, None]
    assert _offline_transitions([s for s in out if s is not None]) == [
        ("device.offline", TransitionKind.RAISE), ("device.offline", TransitionKind.CLEAR)]
