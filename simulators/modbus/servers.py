"""Transports of the simulator: Modbus TCP listeners and RTU lines on socat pseudo-terminals.

TCP: one asyncio server per port; requests are MBAP frames, routed by unit id to the devices of
that port. A unit id nobody serves gets no answer (as behind a serial-to-Ethernet converter).

RTU: ``socat -d -d pty,raw,echo=0,link=<gateway end> pty,raw,echo=0,link=<simulator end>``
makes a pseudo-terminal pair; the simulator reads requests from its end. A pty moves bytes
instantly, so the line's timing is modelled explicitly, as a half-duplex wire at the configured
baud rate: a request of n characters that starts when the wire is free occupies it for n
character times, the addressed device turns round after t3.5 silence, and its answer is written
when its last character would have arrived. A request that follows the previous frame after less
than t3.5 of silence cannot be framed by the devices and gets no answer (counted in
``framing_errors``; ``strict_silence: false`` on the line turns this off). So a master polling
this line can never do better than the real wire's limit, and the RTU wire-efficiency benchmark
measures something real.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import struct
import termios
import tty
from pathlib import Path

from drivers.modbus.codec import (
    RTU_REQUEST_LENGTH,
    char_time_s,
    crc_ok,
    inter_frame_silence_s,
    mbap,
    rtu_exception,
    rtu_read_response,
)
from simulators.modbus.device import Answer, SimDevice

log = logging.getLogger(__name__)

_MBAP = struct.Struct(">HHHB")
# A request must follow the previous frame after at least t3.5 of silence (less 10 % for timer jitter).
_SILENCE_TOLERANCE = 0.9


def rtu_reply(unit: int, fc: int, answer: Answer) -> bytes | None:
    """The RTU frame a device puts on the line for ``answer`` (None: it stays silent), faults included."""
    if answer.kind == "silent":
        return None
    if answer.kind == "exception":
        return rtu_exception(unit, fc, answer.code)
    reply = rtu_read_response(unit, fc, answer.data)
    if answer.kind == "corrupt":
        return reply[:-2] + bytes([reply[-2] ^ 0xFF, reply[-1]])  # wrong CRC
    if answer.kind == "short":
        return reply[: len(reply) // 2]  # the line went quiet mid-frame
    if answer.kind == "garbage":
        return answer.data  # noise on the line instead of an answer
    return reply


def _tcp_frame(tid: int, unit: int, fc: int, answer: Answer) -> bytes | None:
    if answer.kind == "silent":
        return None
    if answer.kind == "exception":
        return mbap(tid, unit, bytes([fc | 0x80, answer.code]))
    if answer.kind == "corrupt":
        # A byte count that disagrees with the data: the MBAP length is right, so the stream stays in step.
        return mbap(tid, unit, bytes([fc, (len(answer.data) + 2) & 0xFF]) + answer.data)
    if answer.kind == "short":  # the byte count promises more than follows (a truncated reply)
        return mbap(tid, unit, bytes([fc, len(answer.data)]) + answer.data[: len(answer.data) // 2])
    if answer.kind == "garbage":  # noise where the PDU should be
        return mbap(tid, unit, answer.data)
    return mbap(tid, unit, bytes([fc, len(answer.data)]) + answer.data)


class _TcpSession(asyncio.Protocol):
    def __init__(self, devices: dict[int, SimDevice], stats: dict[str, int]) -> None:
        self.devices = devices
        self.stats = stats
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.stats["connections"] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        loop = asyncio.get_running_loop()
        while len(self.buffer) >= 7:
            tid, pid, length, unit = _MBAP.unpack_from(self.buffer, 0)
            total = 6 + length
            if pid != 0 or not 2 <= length <= 254:
                self.buffer = b""  # garbage: drop what we have, like a converter resynchronising
                return
            if len(self.buffer) < total:
                return
            pdu, self.buffer = self.buffer[7:total], self.buffer[total:]
            self.stats["requests"] += 1
            device = self.devices.get(unit)
            if device is None or len(pdu) < 5:
                continue
            fc, address, count = pdu[0], *struct.unpack(">HH", pdu[1:5])
            now = loop.time()
            answer = device.answer(fc, address, count, now)
            frame = _tcp_frame(tid, unit, fc, answer)
            if frame is None:
                continue
            if answer.delay > 0:
                loop.call_later(answer.delay, self._send, frame)
            else:
                self._send(frame)

    def _send(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)


class TcpServer:
    def __init__(self, host: str, port: int, devices: dict[int, SimDevice]) -> None:
        self.host = host
        self.port = port
        self.devices = devices
        self.stats = {"connections": 0, "requests": 0}
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _TcpSession(self.devices, self.stats), self.host, self.port, reuse_address=True, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                self._server.close_clients()  # type: ignore[attr-defined]  # Python 3.13+
            await self._server.wait_closed()
            self._server = None


def open_raw_pty(path: str | Path) -> int:
    """Open one end of a socat pty pair as a raw, non-blocking, echo-free byte pipe (a device's UART)."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    return fd


def _exists(path: str) -> bool:
    """A pty link is a symlink on a local tmpfs: checking it does not block in any way that matters."""
    return os.path.lexists(path) and os.path.exists(path)


class RtuServer:
    """One simulated RS-485 line: a socat pty pair, the devices on it, and the wire's timing."""

    def __init__(
        self, link: str, devices: dict[int, SimDevice], *, baudrate: int, bytesize: int = 8, parity: str = "N",
        stopbits: int = 1, strict_silence: bool = True,
    ) -> None:
        self.link = link
        self.sim_link = f"{link}.sim"
        self.devices = devices
        self.baudrate = baudrate
        self.char_s = char_time_s(baudrate, bytesize, parity, stopbits)
        self.silence_s = inter_frame_silence_s(baudrate, bytesize, parity, stopbits)
        self.strict_silence = strict_silence
        self.stats = {"requests": 0, "answers": 0, "crc_errors": 0, "framing_errors": 0}
        self._socat: asyncio.subprocess.Process | None = None
        self._fd: int | None = None
        self._buffer = b""
        self._wire_free = 0.0
        self._handles: list[asyncio.TimerHandle] = []

    async def start(self) -> None:
        socat = shutil.which("socat")
        if socat is None:
            raise RuntimeError("socat is not installed (apt-get install socat)")
        Path(self.link).parent.mkdir(parents=True, exist_ok=True)
        for path in (self.link, self.sim_link):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self._socat = await asyncio.create_subprocess_exec(
            socat, "-d", "-d",
            f"pty,raw,echo=0,link={self.link}",
            f"pty,raw,echo=0,link={self.sim_link}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(200):
            if _exists(self.link) and _exists(self.sim_link):
                break
            if self._socat.returncode is not None:
                raise RuntimeError(f"socat exited with {self._socat.returncode}")
            await asyncio.sleep(0.01)
        else:
            raise RuntimeError(f"socat did not create {self.link}")
        if self._socat.stderr is not None:
            asyncio.get_running_loop().create_task(self._drain_stderr(self._socat.stderr))
        fd = open_raw_pty(self.sim_link)
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._readable)

    @staticmethod
    async def _drain_stderr(stream: asyncio.StreamReader) -> None:
        with contextlib.suppress(Exception):
            while await stream.readline():
                pass

    async def stop(self) -> None:
        for handle in self._handles:
            handle.cancel()
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None
        if self._socat is not None and self._socat.returncode is None:
            self._socat.terminate()
            try:
                async with asyncio.timeout(2.0):
                    await self._socat.wait()
            except TimeoutError:
                self._socat.kill()
                await self._socat.wait()
        self._socat = None
        for path in (self.link, self.sim_link):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            return
        if not data:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._buffer += data
        while len(self._buffer) >= RTU_REQUEST_LENGTH:
            frame = self._buffer[:RTU_REQUEST_LENGTH]
            if not crc_ok(frame):
                # Not a request we can frame: resynchronise one byte at a time.
                self.stats["crc_errors"] += 1
                self._buffer = self._buffer[1:]
                continue
            self._buffer = self._buffer[RTU_REQUEST_LENGTH:]
            self._request(frame, now)

    def _request(self, frame: bytes, now: float) -> None:
        self.stats["requests"] += 1
        unit, fc = frame[0], frame[1]
        address, count = struct.unpack(">HH", frame[2:6])
        gap = now - self._wire_free
        request_end = max(now, self._wire_free) + RTU_REQUEST_LENGTH * self.char_s
        self._wire_free = request_end
        if self.strict_silence and gap < _SILENCE_TOLERANCE * self.silence_s:
            # Less than t3.5 after the last frame: on a real line the devices cannot tell where the
            # previous frame ended, so this request is garbage to them and nobody answers.
            self.stats["framing_errors"] += 1
            return
        device = self.devices.get(unit)
        if device is None:
            return
        answer = device.answer(fc, address, count, now)
        reply = rtu_reply(unit, fc, answer)
        if reply is None:
            return
        start = request_end + self.silence_s + answer.delay
        done = start + len(reply) * self.char_s
        self._wire_free = done
        loop = asyncio.get_running_loop()
        self._handles = [h for h in self._handles if not h.cancelled() and h.when() > now]
        self._handles.append(loop.call_at(done, self._write, reply))

    def _write(self, reply: bytes) -> None:
        if self._fd is None:
            return
        try:
            os.write(self._fd, reply)
            self.stats["answers"] += 1
        except OSError as exc:
            log.warning("rtu %s: write failed: %s", self.link, exc)

