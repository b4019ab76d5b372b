"""One physical serial line (RS-485, or an M-Bus level converter): the port that every bus on it shares.

Each protocol's line object (``drivers.dlt645.line.SerialLine`` for DL/T 645 and CJ/T 188,
``drivers.modbus.shared_line.SharedRtuLink`` for Modbus RTU) frames its own bytes; this module
owns what they must have in common when an installer wires them to one pair of wires
(``shared_line: true`` on each bus):

* one file descriptor, one lock, one receive buffer per port path (``acquire(path, shared=True)``
  hands every bus the same ``SerialPort``), so a DL/T 645 request never goes out while a Modbus
  device is still answering, and vice versa;
* per-transaction line settings: each bus keeps its own baud rate, data bits, parity and stop bits
  (a DTSU666 in its DL/T 645 factory setting is 9600 8E1, the Modbus devices beside it often
  9600 8N1); the port is switched before a transaction whose settings differ from the last one;
* the silence before each request is the longer of the previous frame's and this bus's
  inter-frame silence (t3.5 at each one's own character time), so neither protocol's devices see
  two frames run together;
* bytes that arrive outside a transaction (a late answer to a timed-out request, at whatever
  settings it was sent) are dropped before the next request and reported to the caller;
* opening the port backs off (0.5 s doubling to 30 s): while a port is missing, reads fail at once
  with ``DeviceUnreachable`` instead of each paying an open.

Why not pymodbus's serial client: it opens the port itself (exclusively) and frames Modbus RTU
only, so it cannot take turns with a meter protocol on the same descriptor. pyserial opens and
configures the port; the event loop watches its file descriptor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import termios
from collections.abc import AsyncIterator
from typing import Protocol

import serial

from drivers.modbus.codec import char_time_s, inter_frame_silence_s
from edge.errors import DeviceUnreachable

log = logging.getLogger(__name__)

_OPEN_BACKOFF_FIRST_S = 0.5
_OPEN_BACKOFF_MAX_S = 30.0
_MAX_BUFFER = 4096

PortSettings = tuple[int, int, str, int]  # baud rate, data bits, parity ("N" | "E" | "O"), stop bits


class LineUser(Protocol):
    """What a bus's line object tells the port about itself for one transaction."""

    name: str
    settings: PortSettings
    silence_s: float

    @property
    def retired(self) -> bool: ...


class SerialPort:
    """The open serial port of one physical line: descriptor, lock, receive buffer, silence, open backoff."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.serial: serial.Serial | None = None
        self.fd: int | None = None
        self.lock = asyncio.Lock()
        self.buf = bytearray()
        self.arrived = asyncio.Event()
        self.quiet_at = 0.0  # loop time the last transaction ended
        self.last_silence_s = 0.0  # the inter-frame silence of the bus that ran it
        self.retry_at = 0.0
        self.open_failures = 0
        self.last_open_error = ""
        self.settings: PortSettings | None = None
        self.users = 0
        self.switches = 0  # settings changes between transactions (a shared line with mixed settings)
        self.garbage_bytes = 0  # bytes dropped when the buffer overflowed

    # ------------------------------------------------------------------ one transaction

    @contextlib.asynccontextmanager
    async def transaction(self, user: LineUser, device_id: str, detail: str) -> AsyncIterator[int]:
        """Hold the line for one request and its answer; yields the stale bytes dropped before it.

        Takes the lock, opens the port (or switches it to ``user.settings``), keeps the line silent
        for the longer of the previous frame's silence and ``user.silence_s``, then empties the
        receive buffer. Raises ``DeviceUnreachable`` when the bus was stopped or the port cannot be
        opened or switched.
        """
        async with self.lock:
            if user.retired:
                raise DeviceUnreachable(device_id, f"{user.name}: the bus is stopped", detail=detail)
            self.open(user.settings, user.name, device_id, detail)
            loop = asyncio.get_running_loop()
            wait = self.quiet_at + max(self.last_silence_s, user.silence_s) - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            stale = len(self.buf)
            self.buf.clear()
            try:
                yield stale
            finally:
                self.quiet_at = loop.time()
                self.last_silence_s = user.silence_s

    async def wait_for_bytes(self, timeout: float) -> None:
        """Until more bytes arrive or ``timeout`` passes (no error either way: the caller looks at ``buf``)."""
        self.arrived.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.arrived.wait()

    # ------------------------------------------------------------------ the descriptor

    def open(self, settings: PortSettings, name: str, device_id: str, detail: str) -> None:
        """Open (or reconfigure) the port for ``settings`` = (baud, bytesize, parity, stopbits)."""
        if self.fd is not None:
            if settings != self.settings and self.serial is not None:
                baudrate, bytesize, parity, stopbits = settings
                try:  # only what differs is set (each setter reprograms the UART)
                    self.serial.apply_settings({"baudrate": baudrate, "bytesize": bytesize, "parity": parity,
                                                "stopbits": stopbits})
                except (serial.SerialException, OSError, ValueError, termios.error) as exc:
                    self.close()
                    raise DeviceUnreachable(device_id, f"{name}: cannot switch the line to {settings}: {exc}",
                                            detail=detail) from exc
                self.settings = settings
                self.switches += 1
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
            self.arrived.set()  # a waiting transaction sees the port closed at once
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
        if fd is None:
            raise DeviceUnreachable(device_id, f"{name}: the port was closed", detail=detail)
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


_SHARED_PORTS: dict[str, SerialPort] = {}


def line_name(path: str) -> str:
    """The availability link of every device on a shared physical line, whatever its protocol.

    The rule engine raises one ``link.offline`` alarm when every device behind a link fails (an
    unplugged adapter, a cut pair) instead of one ``device.offline`` per device; naming the line by
    its port puts the meters and the Modbus devices on it behind that one link.
    """
    return f"rs485:{path}"


def acquire(path: str, *, shared: bool) -> SerialPort:
    """The port object for a bus on ``path``: the one every ``shared`` bus on that path uses, or a private one.

    A private port on a path another bus holds fails to open (pyserial opens exclusively), which is
    what an installer who did not say ``shared_line`` gets (``estate-edge check`` refuses it first).
    """
    port = _SHARED_PORTS.setdefault(path, SerialPort(path)) if shared else SerialPort(path)
    port.users += 1
    return port


def release(port: SerialPort) -> None:
    """One bus is done with ``port``; the descriptor closes with its last user."""
    port.users -= 1
    if port.users <= 0:
        port.close()
        if _SHARED_PORTS.get(port.path) is port:
            del _SHARED_PORTS[port.path]


class LineEnd:
    """One bus's end of a serial line: its settings, its port object and counters, closed once.

    The DL/T 645 / CJ/T 188 line (``drivers.dlt645.line.SerialLine``) and the Modbus RTU link on a
    shared line (``drivers.modbus.shared_line.SharedRtuLink``) are both this plus their own framing.
    """

    def __init__(self, port: str, *, baudrate: int, bytesize: int, parity: str, stopbits: int,
                 inter_frame_s: float | None, shared: bool) -> None:
        self.port = port
        self.baudrate = baudrate
        self.bytesize = bytesize
        self.parity = parity
        self.stopbits = stopbits
        self.settings: PortSettings = (baudrate, bytesize, parity, stopbits)
        self.char_s = char_time_s(baudrate, bytesize, parity, stopbits)
        self.silence_s = (
            inter_frame_s if inter_frame_s is not None else inter_frame_silence_s(baudrate, bytesize, parity, stopbits)
        )
        self.name = f"{port}@{baudrate}{parity}"
        self.shared = shared
        self._port = acquire(port, shared=shared)
        self.retired = False
        self.transactions = 0
        self.corrupt_frames = 0
        self.stale_bytes = 0
        self.echoes = 0

    @property
    def connected(self) -> bool:
        return self._port.fd is not None

    def close(self) -> None:
        """Close for good (the lane that owned it stopped); a shared port closes with its last user."""
        if self.retired:
            return
        self.retired = True
        release(self._port)
