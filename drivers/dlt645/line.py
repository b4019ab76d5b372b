"""One RS-485 line of request/reply meters (DL/T 645, CJ/T 188): the seam where serial I/O becomes
``edge.errors``.

    frame = await line.transact(device_id, request, timeout=..., detail=...)

returns the first complete, checksum-correct frame that is not an echo of the request, or raises
``DeviceTimeout`` (silence), ``DeviceUnreachable`` (the port cannot be opened) or a ``FrameError``
(``DeviceProtocolError``: corrupt or truncated frame). Whether the frame answers *this* request
(same meter, same data item) is the caller's check (the codecs' ``check_*_reply``).

Same contract as the Modbus ``RtuLink`` (``drivers.modbus.transport``), whose timing it reuses:

* one transaction at a time (one lock per line, never per device);
* the line is kept silent for ``inter_frame_s`` (default t3.5 for the baud rate, as Modbus RTU)
  after each transaction before the next request goes out;
* the reply timeout starts once the request has left the wire (its bytes at the baud rate), so a
  slow 2,400-baud line does not eat the meter's own answer time;
* bytes that arrive outside a transaction (a late answer to a timed-out request) are dropped and
  counted as ``stale_bytes`` before the next request; garbage before a frame is skipped and counted
  (``garbage_bytes``); a corrupt frame fails the transaction at once (``corrupt_frames``) instead of
  waiting for the timeout, and a frame cut short by silence is a truncated frame, not a timeout;
* opening the port backs off (0.5 s doubling to 30 s): while a port is missing, reads fail at once.

Why not pymodbus here: its serial client frames Modbus RTU only. pyserial opens and configures the
port (baud rate, parity, stop bits); the event loop watches its file descriptor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import termios
from collections.abc import Callable
from typing import Any

import serial

from drivers.dlt645.codec import FrameError, Scan, Verdict
from drivers.modbus.codec import char_time_s, inter_frame_silence_s
from edge.errors import DeviceTimeout, DeviceUnreachable

log = logging.getLogger(__name__)

_OPEN_BACKOFF_FIRST_S = 0.5
_OPEN_BACKOFF_MAX_S = 30.0
_MAX_BUFFER = 4096

Scanner = Callable[[bytes], Scan]


class SerialLine:
    """One half-duplex line; ``scanner`` finds the protocol's frames in the received byte stream."""

    def __init__(
        self,
        port: str,
        scanner: Scanner,
        *,
        baudrate: int = 2400,
        bytesize: int = 8,
        parity: str = "E",
        stopbits: int = 1,
        inter_frame_s: float | None = None,
    ) -> None:
        self.port = port
        self.scanner = scanner
        self.baudrate = baudrate
        self.bytesize = bytesize
        self.parity = parity
        self.stopbits = stopbits
        self.char_s = char_time_s(baudrate, bytesize, parity, stopbits)
        self.silence_s = (
            inter_frame_s if inter_frame_s is not None else inter_frame_silence_s(baudrate, bytesize, parity, stopbits)
        )
        self.name = f"{port}@{baudrate}{parity}"
        self._serial: serial.Serial | None = None
        self._fd: int | None = None
        self._lock = asyncio.Lock()
        self._buf = bytearray()
        self._arrived = asyncio.Event()
        self._quiet_at = 0.0
        self._retry_at = 0.0
        self._open_failures = 0
        self._last_open_error = ""
        self.retired = False
        self.transactions = 0
        self.corrupt_frames = 0
        self.garbage_bytes = 0
        self.stale_bytes = 0
        self.echoes = 0

    # ------------------------------------------------------------------ public

    @property
    def connected(self) -> bool:
        return self._fd is not None

    def close(self) -> None:
        """Close for good (the lane that owned the line stopped)."""
        self.retired = True
        self._disconnect()

    async def transact(self, device_id: str, request: bytes, *, timeout: float, detail: str,
                       expect_reply: bool = True, tap: Callable[[bool, bytes], None] | None = None) -> Any:
        """Send ``request`` and return the protocol frame that answers it (``None`` for a broadcast)."""
        async with self._lock:
            self._open(device_id, detail)
            loop = asyncio.get_running_loop()
            wait = self._quiet_at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if self._buf:
                self.stale_bytes += len(self._buf)
                self._buf.clear()
            try:
                self._write(device_id, request, detail)
                if tap is not None:
                    tap(True, request)
                self.transactions += 1
                if not expect_reply:
                    await asyncio.sleep(len(request) * self.char_s)
                    return None
                deadline = loop.time() + len(request) * self.char_s + timeout
                return await self._receive(device_id, request, deadline, timeout, detail, tap)
            finally:
                self._quiet_at = loop.time() + self.silence_s

    # ------------------------------------------------------------------ receiving

    async def _receive(self, device_id: str, request: bytes, deadline: float, timeout: float, detail: str,
                       tap: Callable[[bool, bytes], None] | None) -> Any:
        loop = asyncio.get_running_loop()
        echo = request.lstrip(b"\xfe")
        while True:
            scan = self.scanner(bytes(self._buf))
            self.garbage_bytes += scan.garbage
            if scan.verdict is Verdict.OK:
                raw = bytes(self._buf[scan.skipped : scan.skipped + scan.length])
                del self._buf[: scan.skipped + scan.length]
                if raw == echo:  # a converter that echoes what it sends
                    self.echoes += 1
                    continue
                if tap is not None:
                    tap(False, raw)
                return scan.frame
            if scan.verdict is Verdict.CORRUPT:
                raw = bytes(self._buf[scan.skipped : scan.skipped + scan.length])
                del self._buf[: scan.skipped + scan.length]
                self.corrupt_frames += 1
                if tap is not None:
                    tap(False, raw)
                raise FrameError(scan.reason, f"corrupt frame ({scan.reason}): {raw.hex(' ')}",
                                 device_id=device_id, detail=detail)
            del self._buf[: scan.skipped]  # garbage (counted above) or wake-up bytes before a frame start
            remaining = deadline - loop.time()
            if remaining <= 0:
                if self._buf:
                    partial = bytes(self._buf)
                    self._buf.clear()
                    self.corrupt_frames += 1
                    raise FrameError("truncated", f"truncated frame: {len(partial)} bytes, then silence",
                                     device_id=device_id, detail=detail)
                raise DeviceTimeout(device_id, f"no answer within {timeout:g} s", detail=detail)
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()

    def _readable(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("%s: read failed (%s); reopening", self.name, exc)
            self._disconnect()
            return
        if not data:
            return
        self._buf += data
        if len(self._buf) > _MAX_BUFFER:  # a babbling device must not grow memory without bound
            self.garbage_bytes += len(self._buf) - _MAX_BUFFER
            del self._buf[: len(self._buf) - _MAX_BUFFER]
        self._arrived.set()

    # ------------------------------------------------------------------ the port

    def _open(self, device_id: str, detail: str) -> None:
        if self._fd is not None:
            return
        if self.retired:
            raise DeviceUnreachable(device_id, f"{self.name}: the bus is stopped", detail=detail)
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now < self._retry_at:
            raise DeviceUnreachable(
                device_id, f"{self.name} cannot be opened ({self._last_open_error}); next attempt in "
                f"{self._retry_at - now:.1f} s", detail=detail)
        try:
            port = serial.Serial(self.port, baudrate=self.baudrate, bytesize=self.bytesize, parity=self.parity,
                                 stopbits=self.stopbits, timeout=0, write_timeout=0, exclusive=True)
        except (serial.SerialException, OSError, ValueError, termios.error) as exc:  # termios: a pty whose peer is gone
            self._open_failures += 1
            delay = min(_OPEN_BACKOFF_FIRST_S * 2 ** (self._open_failures - 1), _OPEN_BACKOFF_MAX_S)
            self._retry_at = now + delay
            self._last_open_error = str(exc)
            raise DeviceUnreachable(device_id, f"{self.name}: {exc}", detail=detail) from exc
        self._open_failures = 0
        self._serial = port
        self._fd = port.fileno()
        self._buf.clear()
        loop.add_reader(self._fd, self._readable)

    def _write(self, device_id: str, data: bytes, detail: str) -> None:
        fd = self._fd
        assert fd is not None
        view = memoryview(data)
        try:
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except BlockingIOError as exc:
            raise DeviceUnreachable(device_id, f"{self.name}: output buffer full", detail=detail) from exc
        except OSError as exc:
            self._disconnect()
            raise DeviceUnreachable(device_id, f"{self.name}: {exc.strerror or exc}", detail=detail) from exc

    def _disconnect(self) -> None:
        fd, port = self._fd, self._serial
        self._fd = None
        self._serial = None
        if fd is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(fd)
        if port is not None:
            with contextlib.suppress(Exception):
                port.close()
