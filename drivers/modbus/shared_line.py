"""Modbus RTU over an RS-485 line shared with DL/T 645 or CJ/T 188 meters (``shared_line: true``).

    data = await link.read(device_id, unit, function_code, address, count, timeout)

The same call, errors and counters as ``transport.RtuLink``, so the scheduler, the device
pollers and the probe above it are unchanged; what differs is who owns the port. ``RtuLink``'s
pymodbus client opens the port exclusively, so a meter bus on the same wires could never get a
turn. This link drives the port object of ``drivers.serial_line`` that the meter buses on the same
path hold too: one descriptor, one lock, and per transaction this bus's own baud rate and parity
(the port is switched when the previous transaction was a meter's at other settings).

One transaction::

    request  [unit][fc][address hi lo][count hi lo][CRC lo hi]          8 bytes, codec.rtu_read_request
    silence  the longer of the previous frame's t3.5 and ours
    reply    [unit][fc][byte count][data ...][CRC lo hi]                5 + codec.data_length bytes
         or  [unit][fc | 0x80][exception code][CRC lo hi]               5 bytes

The framing and the verdict on the received bytes are ``drivers.modbus.codec``'s (the same
``check_rtu_response`` the pymodbus link's packet hook applies), so a reply is trusted only when it
accounts for the request: the slave id, the function code, the byte count the request implies and
the CRC. A CRC-valid frame of its own length from another slave is stale (an answer to an earlier,
timed-out request) and skipped; anything else that is not the answer fails the transaction at once
as a corrupt frame (counted, never a reading) rather than waiting out the timeout. A converter that
echoes the request is tolerated (the echo is skipped and counted). Silence is ``DeviceTimeout``;
some bytes, then silence, is a truncated frame (``DeviceProtocolError``).

Why not pymodbus's ``FramerRTU`` and PDU classes: they decode into register lists that the poller
would pack back into bytes, and a frame they cannot parse is dropped without a reason; the codec
already has the request encoder and the checked decoder this contract needs, tested against the
vectors in ``devices.md``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from drivers import serial_line
from drivers.modbus.codec import (
    EXCEPTION_NAMES,
    READ_FUNCTION_CODES,
    Verdict,
    check_rtu_response,
    data_length,
    rtu_read_request,
)
from edge.errors import DeviceExceptionCode, DeviceProtocolError, DeviceTimeout, DeviceUnreachable

Tap = Callable[[bool, bytes], None]


class SharedRtuLink(serial_line.LineEnd):
    """One Modbus RTU bus's turn-taking view of a shared RS-485 line."""

    is_tcp = False

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 9600,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: int = 1,
        inter_frame_s: float | None = None,
    ) -> None:
        super().__init__(port, baudrate=baudrate, bytesize=bytesize, parity=parity, stopbits=stopbits,
                         inter_frame_s=inter_frame_s, shared=True)
        self.stale_frames = 0

    # ------------------------------------------------------------------ the RtuLink surface

    def receive_buffer(self) -> bytes:
        """Bytes received but not yet used (the probe's view of what a new answer is appended to)."""
        return bytes(self._port.buf)

    async def read(self, device_id: str, unit: int, function_code: int, address: int, count: int,
                   timeout: float, *, tap: Tap | None = None) -> bytes:
        """Read ``count`` registers (FC3/FC4) or bits (FC1/FC2); returns the response's data bytes.

        ``tap(sending, data)`` sees the request as it goes out and the judged reply frame.
        """
        where = f"unit {unit} FC{function_code} {address:#06x}+{count}"
        if function_code not in READ_FUNCTION_CODES:
            raise ValueError(f"{where}: function code {function_code} is not a read")
        request = rtu_read_request(unit, function_code, address, count)
        port = self._port
        async with port.transaction(self, device_id, where) as stale:
            if stale:
                self.stale_bytes += stale
            port.write(request, self.name, device_id, where)
            if tap is not None:
                tap(True, request)
            self.transactions += 1
            loop = asyncio.get_running_loop()
            # The answer time starts once the request has left the wire.
            deadline = loop.time() + len(request) * self.char_s + timeout
            frame = await self._receive(device_id, request, unit, function_code, count, deadline, timeout, where, tap)
        if frame[1] & 0x80:
            code = frame[2]
            raise DeviceExceptionCode(device_id, code, detail=f"{where}: {EXCEPTION_NAMES.get(code, 'unknown')}")
        return frame[3 : 3 + data_length(function_code, count)]

    # ------------------------------------------------------------------ receiving

    async def _receive(self, device_id: str, request: bytes, unit: int, function_code: int, count: int,
                       deadline: float, timeout: float, where: str, tap: Tap | None) -> bytes:
        loop = asyncio.get_running_loop()
        port = self._port
        buf = port.buf
        while True:
            if buf[: len(request)] == request:  # a converter that echoes what it sends
                del buf[: len(request)]
                self.echoes += 1
                continue
            check = check_rtu_response(bytes(buf), unit, function_code, count)
            if check.verdict is Verdict.OK:
                frame = bytes(buf[: check.length])
                del buf[: check.length]
                if tap is not None:
                    tap(False, frame)
                return frame
            if check.verdict is Verdict.STALE:
                del buf[: check.length]
                self.stale_frames += 1
                continue
            partial_echo = len(buf) < len(request) and request.startswith(buf)
            if check.verdict is Verdict.CORRUPT and not partial_echo:
                raw = bytes(buf[: check.length or len(buf)])
                del buf[: len(raw)]
                self.corrupt_frames += 1
                if tap is not None:
                    tap(False, raw)
                raise DeviceProtocolError(device_id, f"corrupt frame: {check.reason}: {raw.hex(' ')}", detail=where)
            remaining = deadline - loop.time()
            if remaining <= 0:
                if buf:
                    partial = bytes(buf)
                    buf.clear()
                    self.corrupt_frames += 1
                    if tap is not None:
                        tap(False, partial)
                    raise DeviceProtocolError(device_id, f"truncated frame: {len(partial)} bytes, then silence",
                                              detail=where)
                raise DeviceTimeout(device_id, f"no answer within {timeout:g} s", detail=where)
            if port.fd is None:  # the read side failed and closed the port
                raise DeviceUnreachable(device_id, f"{self.name}: the port was closed", detail=where)
            await port.wait_for_bytes(remaining)
