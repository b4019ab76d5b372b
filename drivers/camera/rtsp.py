"""RTSP (H.264) frames through OpenCV, with reconnect and a latest-frame-only policy.

A reader thread owns the ``cv2.VideoCapture`` (its calls block, so they cannot run on the event
loop). It ``grab``s every frame the camera sends, which keeps the decoder's reference frames and
the RTP buffer drained, but ``retrieve``s (colour-converts and copies) only when a frame is due at
``max_fps``, and publishes it into a one-frame slot (see ``drivers.camera.frames``).

OpenCV 5 is used with its default backend: naming ``cv2.CAP_FFMPEG`` explicitly fails on this
build (``/work/shared/docs/tried-here.md``), while ``CAP_ANY`` picks the FFmpeg-based reader for
``rtsp://`` URLs. FFmpeg options can only be passed through the ``OPENCV_FFMPEG_CAPTURE_OPTIONS``
environment variable, which is process-wide and read when a capture opens; unless the operator
set it (theirs wins), we set it once to ask for RTP over TCP (interleaved TCP survives NAT and
packet loss far better than UDP on a busy estate LAN) and a 1 s probe, which halves the time to
the first frame (3.6 s -> 1.8 s against the simulator).

Key frames only (``key_frames_only``, per camera, opt-in): FFmpeg discards every packet but key
frames before decoding (``avdiscard;nonkey``), so the reader decodes one frame per GOP (about one
a second on cameras, which is what the analytics use at 1 fps) instead of all 15: measured on a
640x360 sub-stream with sensor noise, 0.6 % of a core instead of 1.6 % (``bench/vision_bench.py``,
``docs/vision-quality.md``). Analysis then runs at most at the key-frame rate: only for cameras
whose GOP is no longer than the analysis interval (fire lanes at 1 fps, not e-bike doors that
vote over a few frames a second). The option travels in the same process-wide variable, so
captures open under a readers-writer lock (``_OPEN_GATE``): plain opens share it and run
concurrently as before; a key-frame open holds it alone while the variable carries the extra
option, so no other capture can read it then. The cost is that a key-frame camera's open waits for
opens in flight (each bounded by ``open_timeout_s``); with no key-frame camera nothing ever waits.

Failure handling: when the stream cannot be opened or a read fails (camera rebooted, network
cut), the capture is released and reopened after a jittered, capped exponential backoff
(``backoff_min_s`` doubling up to ``backoff_max_s``); the backoff resets once frames flow again.
Open and read timeouts bound every blocking call, so ``stop`` returns within about a read timeout.
When an open fails, one RTSP ``DESCRIBE`` tells a refused login (status: "authentication refused")
from a camera that is not there (``drivers.camera.auth.rtsp_login_refused``).
Credentials embedded in the URL are never logged (``redact``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections import deque
from collections.abc import Iterator
from typing import cast
from urllib.parse import quote, urlsplit, urlunsplit

import cv2
import numpy as np
from numpy.typing import NDArray

from drivers.camera.auth import rtsp_login_refused
from drivers.camera.frames import Frame, SlotFrameSource
from edge.backoff import Backoff
from edge.clock import Clock, SystemClock

log = logging.getLogger(__name__)

_CAPTURE_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
FFMPEG_OPTIONS = "rtsp_transport;tcp|analyzeduration;1000000|probesize;500000"
KEY_FRAMES_ONLY = "avdiscard;nonkey"  # FFmpeg drops non-key packets before the decoder sees them


class _OpenGate:
    """Readers-writer lock over capture opens: plain opens share it, an open with extra options is alone.

    A writer waiting blocks new readers (no starvation by a stream of plain reconnects).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


_OPEN_GATE = _OpenGate()


def open_capture(url: str, params: list[int], *, key_frames_only: bool) -> cv2.VideoCapture:
    """A ``cv2.VideoCapture`` of ``url``, opened under ``_OPEN_GATE`` with this capture's FFmpeg options."""
    if not key_frames_only:
        with _OPEN_GATE.shared():
            return cv2.VideoCapture(url, cv2.CAP_ANY, params)
    with _OPEN_GATE.exclusive():
        plain = os.environ.get(_CAPTURE_OPTIONS_ENV, FFMPEG_OPTIONS)
        os.environ[_CAPTURE_OPTIONS_ENV] = f"{plain}|{KEY_FRAMES_ONLY}" if plain else KEY_FRAMES_ONLY
        try:
            return cv2.VideoCapture(url, cv2.CAP_ANY, params)
        finally:
            os.environ[_CAPTURE_OPTIONS_ENV] = plain


def redact(url: str) -> str:
    """``url`` with any user:password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def with_credentials(url: str, username: str | None, password: str | None) -> str:
    """``url`` with URL-quoted credentials inserted (unless it already carries some)."""
    if not username:
        return url
    parts = urlsplit(url)
    if parts.username is not None:
        return url
    userinfo = quote(username, safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    netloc = f"{userinfo}@{parts.netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class RtspFrameSource(SlotFrameSource):
    def __init__(
        self,
        url: str,
        *,
        max_fps: float = 2.0,
        clock: Clock | None = None,
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 5.0,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 30.0,
        name: str = "rtsp",
        key_frames_only: bool = False,
    ) -> None:
        super().__init__()
        self._url = url
        self.key_frames_only = key_frames_only
        self._interval = 1.0 / max_fps
        self._clock = clock or SystemClock()
        self._open_ms = int(open_timeout_s * 1000)
        self._read_ms = int(read_timeout_s * 1000)
        self._backoff_min = backoff_min_s
        self._backoff_max = backoff_max_s
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reconnects = 0
        self.backend: str | None = None
        self.grabbed = 0  # frames read and decoded (every frame the camera sends), for capacity measurements

    async def start(self) -> None:
        if self._thread is not None:
            return
        os.environ.setdefault(_CAPTURE_OPTIONS_ENV, FFMPEG_OPTIONS)
        self._slot.bind(asyncio.get_running_loop())
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self._name}-reader", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        await asyncio.to_thread(thread.join, (self._open_ms + self._read_ms) / 1000 + 2)

    def _failure_count(self) -> int:
        return self._reconnects

    def _open(self) -> cv2.VideoCapture | None:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self._open_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._read_ms]
        capture = open_capture(self._url, params, key_frames_only=self.key_frames_only)
        if not capture.isOpened():
            capture.release()
            return None
        try:
            self.backend = capture.getBackendName()
        except cv2.error:
            self.backend = None
        return capture

    def _run(self) -> None:
        backoff = Backoff(self._backoff_min, self._backoff_max, jitter="spread", spread=0.2)
        seq = 0
        ever_connected = False
        while not self._stop.is_set():
            capture = self._open()
            if capture is None:
                if rtsp_login_refused(self._url, self._open_ms / 1000):
                    self._set_error(f"authentication refused (RTSP 401) by {redact(self._url)}: check the "
                                    "camera's user name and password")
                else:
                    self._set_error(f"cannot open {redact(self._url)}")
                self._stop.wait(backoff.next_delay())
                continue
            if ever_connected:
                self._reconnects += 1
            ever_connected = True
            self._connected = True
            log.info("%s: stream opened (%s)", self._name, redact(self._url))
            last_publish = -1e18
            gop = _KeyFrameGaps(self._name, self._interval) if self.key_frames_only else None
            try:
                while not self._stop.is_set():
                    if not capture.grab():
                        self._set_error(f"read failed on {redact(self._url)}")
                        break
                    self.grabbed += 1
                    now = self._clock.monotonic()
                    if gop is not None:
                        self.key_frame_interval_s = gop.add(now, capture.get(cv2.CAP_PROP_POS_MSEC) / 1000)
                    # 10 % slack: frames arrive with jitter, and "every 0.2 s" must not become
                    # "every other 0.1 s frame, sometimes every third" at 5 fps of a 10 fps stream.
                    if now - last_publish < self._interval * 0.9:
                        continue
                    ok, image = capture.retrieve()
                    if not ok or image is None:
                        continue
                    last_publish = now
                    seq += 1
                    self._last_frame_mono = now
                    self._last_error = None
                    backoff.reset()
                    # OpenCV's stubs type frames as MatLike (no dtype); a decoded video frame is BGR uint8
                    self._slot.publish(Frame(cast("NDArray[np.uint8]", image), seq, now, self._clock.now()))
            finally:
                capture.release()
                self._connected = False
            if not self._stop.is_set():
                log.warning("%s: stream lost, reconnecting in about %.1f s", self._name, backoff.peek_step())
                self._stop.wait(backoff.next_delay())

    def _set_error(self, message: str) -> None:
        if message != self._last_error:
            log.warning("%s: %s", self._name, message)
        self._last_error = message


KEY_FRAME_GAP_FACTOR = 1.5  # key frames further apart than this many analysis intervals are reported


class _KeyFrameGaps:
    """Key-frames-only: measure the camera's GOP and say once when it is longer than the analysis interval.

    Why: in this mode a frame exists only once per GOP, so a camera whose I-frame interval is 2 s
    is analysed every 2 s whatever ``max_fps`` says, and a dwell or a vote needs more time than the
    installer configured. Nothing else would tell; the reader sees the gaps, so it says so in the
    log (once per connection, with what to change) and keeps the median for the camera's status.

    Gaps are measured in the stream's own time (the frames' timestamps), not in arrival time: a
    reader that falls behind (a busy box, the burst of buffered frames a connection starts with)
    receives key frames back to back, and arrival gaps would report a GOP of a few milliseconds.
    Where the stream's time does not advance plausibly (no timestamps, a camera that restarted its
    clock), the arrival gap stands in for that one gap.
    """

    SAMPLES = 5  # gaps before judging
    PLAUSIBLE_GAP_S = 60.0  # a stream-time gap longer than this is a clock jump, not a GOP

    def __init__(self, name: str, interval_s: float) -> None:
        self.name = name
        self.interval_s = interval_s
        self.last: tuple[float, float] | None = None  # (arrival, stream time) of the previous key frame
        self.gaps: deque[float] = deque(maxlen=self.SAMPLES * 4)  # the recent gaps only: a GOP can change
        self.warned = False

    def add(self, now: float, stream_s: float) -> float | None:
        """Note a key frame that arrived at ``now`` (monotonic), stamped ``stream_s``; median gap once known.

        ``stream_s`` is the frame's timestamp in seconds of stream time (0 or negative when unknown).
        """
        if self.last is not None:
            arrived, stamped = self.last
            stream_gap = stream_s - stamped
            self.gaps.append(stream_gap if 0 < stream_gap <= self.PLAUSIBLE_GAP_S else now - arrived)
        self.last = (now, stream_s)
        if len(self.gaps) < self.SAMPLES:
            return None
        median = sorted(self.gaps)[len(self.gaps) // 2]
        if median > KEY_FRAME_GAP_FACTOR * self.interval_s and not self.warned:
            self.warned = True
            log.warning("%s: key frames arrive every %.1f s, less often than the analysis interval of %.1f s; "
                        "analysis runs at the key-frame rate: shorten the camera's I-frame interval (GOP) or set "
                        "stream.key_frames_only: false", self.name, median, self.interval_s)
        return median
