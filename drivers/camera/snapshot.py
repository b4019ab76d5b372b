"""HTTP snapshot polling: one JPEG every few seconds, for tasks that need no continuous stream.

ONVIF cameras serve a snapshot URI (GetSnapshotUri) behind HTTP Digest or Basic authentication
(``drivers.camera.auth.CameraAuth`` answers whichever the camera asks for); polling
it costs the camera and the gateway almost nothing compared with decoding H.264, which makes it
the right source for slow analytics (a parked-car check every 5 s) on many cameras. TLS
certificates are verified (httpx's default); a camera with a self-signed certificate needs its CA
given through ``verify``.

Failures (timeout, refused, a body that is not a JPEG) are recorded in ``status`` and retried at
the normal interval, doubling up to ``backoff_max_s`` while they persist; a login the camera
refuses is a ``CameraAuthError`` ("authentication refused"), retried the same way (the installer
may fix the password without a restart). The slot keeps only the newest frame, as for RTSP.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

import cv2
import httpx
import numpy as np

from drivers.camera.auth import CameraAuth, CameraAuthError
from drivers.camera.frames import Frame, SlotFrameSource
from drivers.camera.rtsp import redact
from edge.backoff import Backoff
from edge.clock import Clock, SystemClock
from edge.tasks import cancel_and_wait

log = logging.getLogger(__name__)


def decode_jpeg(body: bytes) -> np.ndarray:
    """BGR image from JPEG (or PNG) bytes; ``ValueError`` if it is not an image."""
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"snapshot body is not an image ({len(body)} bytes)")
    return image


class SnapshotFrameSource(SlotFrameSource):
    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        interval_s: float = 5.0,
        timeout_s: float = 5.0,
        backoff_max_s: float = 60.0,
        clock: Clock | None = None,
        verify: bool | str | ssl.SSLContext = True,
        transport: httpx.AsyncBaseTransport | None = None,
        name: str = "snapshot",
    ) -> None:
        super().__init__()
        self._url = url
        self._auth = CameraAuth(username, password or "", name=name) if username else None
        self._interval = interval_s
        self._timeout = timeout_s
        self._backoff_max = backoff_max_s
        self._clock = clock or SystemClock()
        self._verify = verify
        self._transport = transport
        self._name = name
        self._task: asyncio.Task[None] | None = None
        self._errors = 0

    async def start(self) -> None:
        if self._task is None:
            self._slot.bind(asyncio.get_running_loop())
            self._task = asyncio.create_task(self._run(), name=f"{self._name}-poll")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def _failure_count(self) -> int:
        return self._errors

    async def fetch(self, client: httpx.AsyncClient) -> np.ndarray:
        response = await client.get(self._url)
        if response.status_code == 401:
            raise CameraAuthError(
                self._name, "authentication refused (HTTP 401): check the camera's user name and password"
                if self._auth is not None else "the camera needs a login (HTTP 401) and none is configured",
                detail=f"snapshot {redact(self._url)}",
            )
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code} from {redact(self._url)}")
        return await asyncio.to_thread(decode_jpeg, response.content)

    async def _run(self) -> None:
        seq = 0
        delay = self._interval
        failing = Backoff(self._interval * 2, self._backoff_max)  # 2, 4, 8 ... intervals while snapshots fail
        async with httpx.AsyncClient(auth=self._auth, timeout=self._timeout, verify=self._verify,
                                     transport=self._transport) as client:
            while True:
                started = self._clock.monotonic()
                try:
                    image = await self.fetch(client)
                except (httpx.HTTPError, ValueError, CameraAuthError) as exc:
                    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    if message != self._last_error:
                        log.warning("%s: snapshot failed: %s", self._name, message)
                    self._last_error = message
                    self._connected = False
                    self._errors += 1
                    delay = failing.next_delay()
                else:
                    seq += 1
                    now = self._clock.monotonic()
                    self._connected = True
                    self._last_error = None
                    self._last_frame_mono = now
                    delay = self._interval
                    failing.reset()
                    self._slot.publish(Frame(image, seq, now, self._clock.now()))
                elapsed = self._clock.monotonic() - started
                await asyncio.sleep(max(0.0, delay - elapsed))
