"""A frame source that plays a scenario against a scripted clock, for tests and quality runs.

It implements ``drivers.camera.frames.FrameSource``: each ``next_frame`` advances a ``ManualClock``
by one frame period and renders the scenario at that time, so a camera source (and its dwell and
hold timers) sees a 6-minute story in as long as inference takes, with timestamps exactly as a
live camera at ``fps`` would give. After ``duration_s`` it reports ``done`` and returns no more
frames.
"""

from __future__ import annotations

import asyncio

from drivers.camera.frames import Frame, FrameSourceStatus
from edge.clock import ManualClock
from simulators.camera.scenarios import Scenario


class ScenarioReplay:
    def __init__(self, scenario: Scenario, clock: ManualClock, *, fps: float, duration_s: float) -> None:
        self.scenario = scenario
        self.clock = clock
        self.period = 1.0 / fps
        self.frames = max(1, int(duration_s * fps))
        self.done = asyncio.Event()
        self._index = 0
        self._last_mono: float | None = None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def next_frame(self, after_seq: int, timeout: float) -> Frame | None:
        if self._index >= self.frames:
            self.done.set()
            await asyncio.sleep(min(timeout, 0.05))
            return None
        if self._index > 0:
            self.clock.advance(self.period)
        t = self._index * self.period
        image = await asyncio.to_thread(self.scenario.render, t)
        self._index += 1
        self._last_mono = self.clock.monotonic()
        return Frame(image, self._index, self._last_mono, self.clock.now())

    def status(self) -> FrameSourceStatus:
        return FrameSourceStatus(True, self._index, 0, 0, self._last_mono, None)
