"""Frames and the latest-frame-only hand-over between a producer and the vision pipeline.

Backpressure policy (written down because it is the point): a frame source keeps exactly one
frame, the newest. A consumer that is slower than the camera never builds a queue; it simply gets
the newest frame when it asks, and the frames in between are dropped (counted in ``dropped``).
Analysing stale frames in order would only make alarms late.

``LatestFrame`` is written from any thread (the RTSP reader runs in its own thread because
OpenCV's reads block) and read from the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, Self

import numpy as np
from numpy.typing import NDArray

from edge.tasks import wait_event


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded BGR frame. ``mono`` and ``ts`` are the gateway clock when it was captured."""

    image: NDArray[np.uint8]
    seq: int
    mono: float
    ts: datetime


@dataclass(frozen=True, slots=True)
class FrameSourceStatus:
    connected: bool
    frames: int  # frames published since start
    dropped: int  # published frames nobody took before a newer one replaced them
    reconnects: int
    last_frame_mono: float | None
    last_error: str | None
    key_frame_interval_s: float | None = None  # key-frames-only RTSP: the median gap between key frames


class FrameSource(Protocol):
    """Produces frames until stopped. ``start``/``stop`` are idempotent."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def next_frame(self, after_seq: int, timeout: float) -> Frame | None:
        """The newest frame with ``seq > after_seq``, waiting up to ``timeout`` s; None on timeout."""

    def status(self) -> FrameSourceStatus: ...


class LatestFrame:
    """A one-frame slot: ``publish`` from any thread, ``wait_newer`` from the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._taken_seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self.published = 0
        self.dropped = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def publish(self, frame: Frame) -> None:
        with self._lock:
            if self._frame is not None and self._frame.seq > self._taken_seq:
                self.dropped += 1
            self._frame = frame
            self.published += 1
        loop, event = self._loop, self._event
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(event.set)

    async def wait_newer(self, after_seq: int, timeout: float) -> Frame | None:
        if self._event is None:
            self.bind(asyncio.get_running_loop())
        assert self._event is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._event.clear()
            with self._lock:
                frame = self._frame
                if frame is not None and frame.seq > after_seq:
                    self._taken_seq = frame.seq
                    return frame
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            if not await wait_event(self._event, remaining):
                return None


class SlotFrameSource:
    """What RTSP and snapshot sources share: a ``LatestFrame`` slot, health fields, the context manager.

    Subclasses own how frames arrive (``start``/``stop``) and count their own failures
    (``_failure_count``: reconnects for a stream, failed fetches for snapshots).
    """

    def __init__(self) -> None:
        self._slot = LatestFrame()
        self._connected = False
        self._last_error: str | None = None
        self._last_frame_mono: float | None = None
        self.key_frame_interval_s: float | None = None  # measured where it decides the analysis rate (RTSP)

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def _failure_count(self) -> int:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def next_frame(self, after_seq: int, timeout: float) -> Frame | None:
        return await self._slot.wait_newer(after_seq, timeout)

    def status(self) -> FrameSourceStatus:
        return FrameSourceStatus(
            self._connected, self._slot.published, self._slot.dropped, self._failure_count(),
            self._last_frame_mono, self._last_error, self.key_frame_interval_s,
        )
