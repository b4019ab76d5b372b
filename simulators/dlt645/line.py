"""A simulated RS-485 line of request/reply meters (DL/T 645, CJ/T 188) on a socat pty pair.

It *is* the Modbus simulator's ``RtuServer`` (``simulators.modbus.servers``) with another framing:
the same socat plumbing, the same half-duplex wire model (a request of n characters occupies the
wire for n character times at the line's baud rate and parity; the meter answers after the
inter-frame silence, and its answer arrives when its last character would have), so a master
can never poll faster than the real wire allows and the wire-efficiency bench measures something
real.

Each meter is a ``Responder``: ``answer(frame) -> bytes | None``. Switches per meter (``silent``,
``corrupt`` checksum, ``truncate``, ``garbage`` before the reply) model the faults the driver
must survive. A request addressed to several meters at once (the read-address wildcard) makes
them all answer at once: the frames collide into noise, as on a real line.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from drivers.dlt645.codec import Scan, Verdict
from simulators.modbus.servers import RtuServer

log = logging.getLogger(__name__)


class Responder(Protocol):
    silent: bool
    corrupt: bool
    truncate: bool
    garbage: bool

    def answer(self, frame: Any) -> bytes | None: ...


class MeterLineServer(RtuServer):
    """One line, its meters, and the wire's timing. ``scanner`` finds request frames in the byte stream."""

    def __init__(self, link: str, meters: Sequence[Responder], scanner: Callable[[bytes], Scan], *,
                 baudrate: int, parity: str = "E", bytesize: int = 8, stopbits: int = 1,
                 turnaround_s: float = 0.0) -> None:
        super().__init__(link, {}, baudrate=baudrate, bytesize=bytesize, parity=parity, stopbits=stopbits)
        self.meters = list(meters)
        self.scanner = scanner
        self.turnaround_s = turnaround_s
        self.stats.update({"collisions": 0, "corrupt_requests": 0})

    def _readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 4096)
        except OSError:
            return
        if not data:
            return
        now = asyncio.get_running_loop().time()
        self._buffer += data
        while True:
            scan = self.scanner(self._buffer)
            if scan.verdict is Verdict.OK:
                length = scan.skipped + scan.length
                self._buffer = self._buffer[length:]
                self._request(scan.frame, length, now)
                continue
            if scan.verdict is Verdict.CORRUPT:
                self.stats["corrupt_requests"] += 1
                self._buffer = self._buffer[scan.skipped + scan.length :]
                continue
            self._buffer = self._buffer[scan.skipped :]
            return

    def _request(self, frame: Any, length: int, now: float) -> None:  # type: ignore[override]
        self.stats["requests"] += 1
        request_end = max(now, self._wire_free) + length * self.char_s
        self._wire_free = request_end
        replies = [r for r in (m.answer(frame) for m in self.meters if not m.silent) if r is not None]
        if not replies:
            return
        if len(replies) > 1:
            self.stats["collisions"] += 1
            reply = bytes(a | b for a, b in zip(replies[0], replies[1], strict=False))  # wired-OR noise
        else:
            reply = replies[0]
        start = request_end + self.silence_s + self.turnaround_s
        done = start + len(reply) * self.char_s
        self._wire_free = done
        loop = asyncio.get_running_loop()
        self._handles = [h for h in self._handles if not h.cancelled() and h.when() > now]
        self._handles.append(loop.call_at(done, self._write, reply))


def apply_faults(meter: Responder, reply: bytes) -> bytes | None:
    """The meter's fault switches applied to a well-formed reply (checksum is the second-last byte)."""
    if meter.corrupt:
        reply = reply[:-2] + bytes([(reply[-2] + 1) & 0xFF]) + reply[-1:]
    if meter.truncate:
        reply = reply[: len(reply) // 2]
    if meter.garbage:
        reply = b"\x00\x55\xaa" + reply
    return reply
