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

One physical line, several buses: a DL/T 645 bus and a CJ/T 188 bus whose installer set
``shared_line`` on both get the *same* port object (one file descriptor, one lock, one receive
buffer, keyed by the port's path), so their transactions never overlap on the wire. Each bus keeps
its own baud rate, parity and framing: the port is reconfigured before a transaction whose
settings differ from the last one (``estate-edge check`` warns when they do, since a meter that
sees frames in another parity may count them as line errors). A Modbus RTU bus cannot join: its
pymodbus client opens the port itself.

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


class _Port:
    """The open serial port of one physical line: descriptor, lock, receive buffer, silence, open backoff."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.serial: serial.Serial | None = None
        self.fd: int | None = None
        self.lock = asyncio.Lock()
        self.buf = bytearray()
        self.arrived = asyncio.Event()
        self.quiet_at = 0.0
        self.retry_at = 0.0
        self.open_failures = 0
        self.last_open_error = ""
        self.settings: tuple[int, int, str, int] | None = None
        self.users = 0
        self.garbage_bytes = 0  # bytes dropped when the buffer overflowed

    def open(self, settings: tuple[int, int, str, int], name: str, device_id: str, detail: str) -> None:
        """Open (or reconfigure) the port for ``settings`` = (baud, bytesize, parity, stopbits)."""
        if self.fd is not None:
            if settings != self.settings and self.serial is not None:
                try:
                    self.serial.baudrate, self.serial.bytesize, self.serial.parity, self.serial.stopbits = settings
                except (serial.SerialException, OSError, ValueError, termios.error) as exc:
                    self.close()
                    raise DeviceUnreachable(device_id, f"{name}: cannot switch the line to {settings}: {exc}",
                                            detail=detail) from exc
                self.settings = settings
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now < self.retry_at:
            raise DeviceUnreachable(
                device_id, f"{name} cannot be opened ({self.last_open_error}); next attempt in "
                f"{self.retry_at - now:.1f} s", detail=detail)
        baudrate, bytesize, parity, stopbits = settings
        try:
            port = serial.Serial(self.path, baudrate=baudrate, bytesize=bytesize, parity=parity, stopbits=stopbits,
                                 timeout=0, write_timeout=0, exclusive=True)
        except (serial.SerialException, OSError, ValueError, termios.error) as exc:  # termios: a pty whose peer is gone
            self.open_failures += 1
            self.retry_at = now + min(_OPEN_BACKOFF_FIRST_S * 2 ** (self.open_failures - 1), _OPEN_BACKOFF_MAX_S)
            self.last_open_error = str(exc)
            raise DeviceUnreachable(device_id, f"{name}: {exc}", detail=detail) from exc
        self.open_failures = 0
        self.serial = port
        self.fd = port.fileno()
        self.settings = settings
        self.buf.clear()
        loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        fd = self.fd
        if fd is None:
            return
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("%s: read failed (%s); reopening", self.path, exc)
            self.close()
            return
        if not data:
            return
        self.buf += data
        if len(self.buf) > _MAX_BUFFER:  # a babbling device must not grow memory without bound
            self.garbage_bytes += len(self.buf) - _MAX_BUFFER
            del self.buf[: len(self.buf) - _MAX_BUFFER]
        self.arrived.set()

    def write(self, data: bytes, name: str, device_id: str, detail: str) -> None:
        fd = self.fd
        assert fd is not None
        view = memoryview(data)
        try:
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except BlockingIOError as exc:
            raise DeviceUnreachable(device_id, f"{name}: output buffer full", detail=detail) from exc
        except OSError as exc:
            self.close()
            raise DeviceUnreachable(device_id, f"{name}: {exc.strerror or exc}", detail=detail) from exc

    def close(self) -> None:
        fd, port = self.fd, self.serial
        self.fd = None
        self.serial = None
        self.settings = None
        if fd is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(fd)
        if port is not None:
            with contextlib.suppress(Exception):
                port.close()


_SHARED_PORTS: dict[str, _Port] = {}


class SerialLine:
    """One bus's view of a half-duplex line; ``scanner`` finds the protocol's frames in the received bytes.

    ``shared``: the port object is shared with the other buses naming the same path (see above).
    """

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
        shared: bool = False,
    ) -> None:
        self.port = port
        self.scanner = scanner
        self.baudrate = baudrate
        self.bytesize = bytesize
        self.parity = parity
        self.stopbits = stopbits
        self.settings = (baudrate, bytesize, parity, stopbits)
        self.char_s = char_time_s(baudrate, bytesize, parity, stopbits)
        self.silence_s = (
            inter_frame_s if inter_frame_s is not None else inter_frame_silence_s(baudrate, bytesize, parity, stopbits)
        )
        self.name = f"{port}@{baudrate}{parity}"
        self.shared = shared
        if shared:
            self._port = _SHARED_PORTS.setdefault(port, _Port(port))
        else:
            self._port = _Port(port)
        self._port.users += 1
        self.retired = False
        self.transactions = 0
        self.corrupt_frames = 0
        self.garbage_bytes = 0
        self.stale_bytes = 0
        self.echoes = 0

    # ------------------------------------------------------------------ public

    @property
    def connected(self) -> bool:
        return self._port.fd is not None

    def close(self) -> None:
        """Close for good (the lane that owned the line stopped); a shared port closes with its last user."""
        if self.retired:
            return
        self.retired = True
        port = self._port
        port.users -= 1
        if port.users <= 0:
            port.close()
            if _SHARED_PORTS.get(self.port) is port:
                del _SHARED_PORTS[self.port]

    async def transact(self, device_id: str, request: bytes, *, timeout: float, detail: str,
                       expect_reply: bool = True, tap: Callable[[bool, bytes], None] | None = None) -> Any:
        """Send ``request`` and return the protocol frame that answers it (``None`` for a broadcast)."""
        port = self._port
        async with port.lock:
            if self.retired:
                raise DeviceUnreachable(device_id, f"{self.name}: the bus is stopped", detail=detail)
            port.open(self.settings, self.name, device_id, detail)
            loop = asyncio.get_running_loop()
            wait = port.quiet_at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if port.buf:
                self.stale_bytes += len(port.buf)
                port.buf.clear()
            try:
                port.write(request, self.name, device_id, detail)
                if tap is not None:
                    tap(True, request)
                self.transactions += 1
                if not expect_reply:
                    await asyncio.sleep(len(request) * self.char_s)
                    return None
                deadline = loop.time() + len(request) * self.char_s + timeout
                return await self._receive(device_id, request, deadline, timeout, detail, tap)
            finally:
                port.quiet_at = loop.time() + self.silence_s

    # ------------------------------------------------------------------ receiving

    async def _receive(self, device_id: str, request: bytes, deadline: float, timeout: float, detail: str,
                       tap: Callable[[bool, bytes], None] | None) -> Any:
        loop = asyncio.get_running_loop()
        port = self._port
        buf = port.buf
        echo = request.lstrip(b"\xfe")
        while True:
            scan = self.scanner(bytes(buf))
            self.garbage_bytes += scan.garbage
            if scan.verdict is Verdict.OK:
                raw = bytes(buf[scan.skipped : scan.skipped + scan.length])
                del buf[: scan.skipped + scan.length]
                if raw == echo:  # a converter that echoes what it sends
                    self.echoes += 1
                    continue
                if tap is not None:
                    tap(False, raw)
                return scan.frame
            if scan.verdict is Verdict.CORRUPT:
                raw = bytes(buf[scan.skipped : scan.skipped + scan.length])
                del buf[: scan.skipped + scan.length]
                self.corrupt_frames += 1
                if tap is not None:
                    tap(False, raw)
                raise FrameError(scan.reason, f"corrupt frame ({scan.reason}): {raw.hex(' ')}",
                                 device_id=device_id, detail=detail)
            del buf[: scan.skipped]  # garbage (counted above) or wake-up bytes before a frame start
            remaining = deadline - loop.time()
            if remaining <= 0:
                if buf:
                    partial = len(buf)
                    buf.clear()
                    self.corrupt_frames += 1
                    raise FrameError("truncated", f"truncated frame: {partial} bytes, then silence",
                                     device_id=device_id, detail=detail)
                raise DeviceTimeout(device_id, f"no answer within {timeout:g} s", detail=detail)
            port.arrived.clear()
            if port.fd is None:  # the read side failed and closed the port
                raise DeviceUnreachable(device_id, f"{self.name}: the port was closed", detail=detail)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await port.arrived.wait()
