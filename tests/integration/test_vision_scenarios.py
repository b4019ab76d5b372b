"""End to end on real media: camera source -> pipeline -> events, with a scripted clock.

Each scenario (built from ../shared/media, see simulators/camera/scenarios.py) is replayed as a
camera stream whose clock only moves frame by frame (``ScenarioReplay``): the real YOLOX-Nano
model, tracker, analytics, gating and evidence run on every frame, and the default dwell (120 s)
and hold (60 s) apply, yet a six-minute story takes seconds. Expected times come from
tests/data/scenario_truth.yaml.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from drivers.camera.source import ResolvedStream
from edge.cameras import camera_source
from edge.clock import ManualClock
from edge.config.cameras import CameraConfig
from edge.records import Event, Severity
from simulators.camera.replay import ScenarioReplay
from simulators.camera.scenarios import scenario
from tests.helpers.sink import RecordingSink
from tests.helpers.waiting import eventually

TRUTH = yaml.safe_load((Path(__file__).resolve().parents[1] / "data" / "scenario_truth.yaml").read_text())
START = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


async def replay(name: str, *, fps: float, duration_s: float, **camera: Any) -> RecordingSink:
    story = scenario(name)
    clock = ManualClock(START)
    player = ScenarioReplay(story, clock, fps=fps, duration_s=duration_s)
    cfg = CameraConfig.model_validate({
        "id": name.replace("_", "-"), "name": name, "location": {"building": "sim"}, "onvif": False,
        "stream": {"rtsp_uri": "rtsp://127.0.0.1/replay"}, "fps": fps,
        "zones": [z.as_config() for z in story.zones], "health": {"interval_s": 0.5}, **camera,
    })

    def factory(_stream: ResolvedStream, _cfg: CameraConfig, _clock: object) -> ScenarioReplay:
        return player

    sink = RecordingSink()
    source = camera_source(cfg, clock=clock, frame_source_factory=factory)
    task = asyncio.create_task(source.run(sink))
    try:
        await asyncio.wait_for(player.done.wait(), timeout=120)
        await asyncio.sleep(0.1)
        view = await source.analyser.latest_view()  # what the panel's camera page shows
        assert view is not None and view.jpeg[:2] == b"\xff\xd8"
        assert (view.width, view.height) == (story.width, story.height)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return sink


def at(event: Event) -> float:
    return (event.ts - START).total_seconds()


def expected(name: str, code: str) -> list[float]:
    return [e["at"] for e in TRUTH["scenarios"][name]["expected"] if e["code"] == code]


def within(t: float, target: float) -> bool:
    s = TRUTH["settings"]
    return target - s["early_s"] <= t <= target + s["late_s"]


async def test_blocked_fire_lane_raised_once_and_cleared() -> None:
    sink = await replay("lane_a7_park", fps=0.5, duration_s=380)
    events = [e for e in sink.events_seen if e.code.startswith("fire.")]
    assert [e.code for e in events] == ["fire.lane_blocked", "fire.lane_cleared"]
    blocked, cleared = events
    assert within(at(blocked), expected("lane_a7_park", "fire.lane_blocked")[0])
    assert within(at(cleared), expected("lane_a7_park", "fire.lane_cleared")[0])
    assert blocked.severity is Severity.MAJOR and blocked.device_id == "lane-a7-park"
    assert blocked.data["zone"] == "lane" and blocked.data["label"] == "car"
    assert blocked.data["lane"] == cleared.data["lane"] == "lane-a7-park/lane"
    assert (blocked.data["active"], cleared.data["active"]) == (True, False)
    assert blocked.data["dwell_s"] >= 120
    box = blocked.data["box"]
    assert abs(box["x1"] - 708) < 25 and abs(box["y2"] - 517) < 15  # the parked car, as annotated
    assert 190 <= cleared.data["blocked_s"] <= 215
    for event in events:  # evidence: a JPEG of the full frame
        image = cv2.imdecode(np.frombuffer(event.evidence or b"", np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (750, 1168, 3)
    # The drive-through at 337-343 s raised nothing (it would be a third event).
    statuses = [s.online for s in sink.statuses]
    assert statuses[-1] is True


async def test_ebike_entry_raised_once_per_entry() -> None:
    sink = await replay("door_b2_motorcycle", fps=2, duration_s=120)
    entries = [e for e in sink.events_seen if e.code == "fire.ebike_entry"]
    assert len(entries) == 2
    for event, target in zip(entries, expected("door_b2_motorcycle", "fire.ebike_entry"), strict=True):
        assert within(at(event), target), (at(event), target)
        assert event.data["label"] == "motorcycle" and event.data["zone"] == "door"
        # Staff read 电动车 (whatever the detector's class); the class stays in data.
        assert event.message_code == "fire.ebike_entry" and event.message.startswith("电动车进入")
        assert "motorcycle" not in event.message
        assert event.data["active"] is True
        assert event.data["entry"] == f"door-b2-motorcycle/door/{event.data['track_id']}"
        assert event.evidence and event.evidence[:2] == b"\xff\xd8"
    assert entries[0].data["track_id"] != entries[1].data["track_id"]


async def test_real_traffic_driving_through_raises_nothing() -> None:
    sink = await replay("lane_a4_traffic", fps=1, duration_s=90, analytics={"dwell_s": 20, "hold_s": 10})
    assert [e for e in sink.events_seen if e.code.startswith("fire.")] == []
    points = {r.point for r in sink.readings_seen}
    assert {"reachable", "stream_alive", "frame_age_s", "frozen", "covered"} <= points
    # Every point's name agrees with its unit: the inference time is in seconds and says so.
    inference = [r for r in sink.readings_seen if r.point.startswith("inference")]
    assert inference and {(r.point, r.unit) for r in inference} == {("inference_s", "s")}
    assert all(0 < r.value < 10 for r in inference)


class StuckCamera:
    """A stream that repeats one picture (a hung encoder), then shows a taped-over lens."""

    def __init__(self, clock: ManualClock, still: np.ndarray, frames: int) -> None:
        self.clock, self.still, self.frames = clock, still, frames
        self.index = 0
        self.done = asyncio.Event()
        rng = np.random.default_rng(3)
        self.flat = np.clip(40 + rng.normal(0, 1.0, still.shape), 0, 255).astype(np.uint8)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def next_frame(self, after_seq: int, timeout: float):  # type: ignore[no-untyped-def]
        from drivers.camera.frames import Frame

        if self.index >= self.frames:
            self.done.set()
            await asyncio.sleep(0.05)
            return None
        if self.index:
            self.clock.advance(1.0)
        self.index += 1
        image = self.still if self.index <= self.frames // 2 else self.flat
        return Frame(image, self.index, self.clock.monotonic(), self.clock.now())

    def status(self):  # type: ignore[no-untyped-def]
        from drivers.camera.frames import FrameSourceStatus

        return FrameSourceStatus(True, self.index, 0, 0, self.clock.monotonic(), None)


async def test_frozen_then_covered_camera_raises_health_events() -> None:
    clock = ManualClock(START)
    still = scenario("lane_a7_park").render(0.0)
    stuck = StuckCamera(clock, still, frames=80)
    cfg = CameraConfig.model_validate({
        "id": "cam-stuck", "name": "stuck", "location": {"building": "1"}, "onvif": False,
        "stream": {"rtsp_uri": "rtsp://127.0.0.1/stuck"}, "health": {"frozen_after_s": 20, "covered_after_s": 10,
                                                                      "interval_s": 0.2},
    })
    sink = RecordingSink()
    source = camera_source(cfg, clock=clock, frame_source_factory=lambda *_: stuck)
    task = asyncio.create_task(source.run(sink))
    await asyncio.wait_for(stuck.done.wait(), timeout=60)
    # The health loop reports frozen=1 on its next tick after the fourth event (interval_s 0.2): wait for both.
    await eventually(lambda: len(sink.events_seen) >= 4
                     and [r.value for r in sink.readings_seen if r.point == "frozen"][-1:] == [1.0],
                     what="the fourth camera health event and the frozen reading after it")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    codes = [(e.code, round(at(e))) for e in sink.events_seen]
    # Identical frames from t=1 (t=0 has nothing to compare with): frozen at 21 s. The switch to
    # the taped lens at 40 s is a change (frozen_cleared); the flat frames are covered from 50 s, and
    # being identical as well, frozen again from 61 s.
    assert codes == [("camera.frozen", 21), ("camera.frozen_cleared", 40), ("camera.covered", 50),
                     ("camera.frozen", 61)]
    assert [e.data["active"] for e in sink.events_seen] == [True, False, True, True]
    warnings = [e for e in sink.events_seen if e.severity is Severity.WARNING]
    assert len(warnings) == 3 and all(e.evidence for e in warnings)
    frozen = [r.value for r in sink.readings_seen if r.point == "frozen"]
    assert frozen and frozen[-1] == 1.0
