"""One RS-485 line of request/reply meters (DL/T 645, CJ/T 188): the seam where serial I/O becomes ``edge.errors``.

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

One physical line, several buses: a DL/T 645, CJ/T 188 or Modbus RTU bus whose installer set
``shared_line`` gets the *same* port object (``drivers.serial_line``: one file descriptor, one
lock, one receive buffer, keyed by the port's path), so their transactions never overlap on the
wire. Each bus keeps its own baud rate, parity and framing: the port is switched before a
transaction whose settings differ from the last one (``estate-edge check`` warns when they do,
since a meter that sees frames in another parity may count them as line errors).

Why not pymodbus here: its serial client frames Modbus RTU only. pyserial opens and configures the
port (baud rate, parity, stop bits); the event loop watches its file descriptor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from drivers import serial_line
from drivers.dlt645.codec import FrameError, Scan, Verdict
from edge.errors import DeviceTimeout, DeviceUnreachable

log = logging.getLogger(__name__)

Scanner = Callable[[bytes], Scan]


class SerialLine(serial_line.LineEnd):
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
        super().__init__(port, baudrate=baudrate, bytesize=bytesize, parity=parity, stopbits=stopbits,
                         inter_frame_s=inter_frame_s, shared=shared)
        self.scanner = scanner
        self.garbage_bytes = 0

    # ------------------------------------------------------------------ public

    async def transact(self, device_id: str, request: bytes, *, timeout: float, detail: str,
                       expect_reply: bool = True, tap: Callable[[bool, bytes], None] | None = None) -> Any:
        """Send ``request`` and return the protocol frame that answers it (``None`` for a broadcast)."""
        port = self._port
        async with port.transaction(self, device_id, detail) as stale:
            self.stale_bytes += stale
            loop = asyncio.get_running_loop()
            port.write(request, self.name, device_id, detail)
            if tap is not None:
                tap(True, request)
            self.transactions += 1
            if not expect_reply:
                await asyncio.sleep(len(request) * self.char_s)
                return None
            deadline = loop.time() + len(request) * self.char_s + timeout
            return await self._receive(device_id, request, deadline, timeout, detail, tap)

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
            if port.fd is None:  # the read side failed and closed the port
                raise DeviceUnreachable(device_id, f"{self.name}: the port was closed", detail=detail)
            await port.wait_for_bytes(remaining)
