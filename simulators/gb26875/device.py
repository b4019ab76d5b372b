"""A simulated user information transmission device: connects to the centre and sends what its panel says.

``SimUitd.send(objects)`` sends one data frame and waits for the centre's answer with the same serial
number (confirm or deny); the centre's control frames (time sync) are confirmed and remembered.
Switches model the faults the gateway must survive: ``corrupt`` (every frame with a wrong
checksum), ``garbage`` (noise before each frame) and ``silent`` (stay connected, send nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime

from drivers.dlt645.codec import Verdict
from drivers.gb26875 import codec


@dataclass
class SimUitd:
    host: str
    port: int
    address: int
    centre: int = 0
    corrupt: bool = False
    garbage: bool = False
    silent: bool = False
    answer_timeout_s: float = 5.0
    clock_set: list[datetime | None] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # the centre's commands, in order
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _serial: int = 0
    _pending: dict[int, asyncio.Future[int]] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._task = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        self._writer = None

    async def __aenter__(self) -> SimUitd:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing() and not (
            self._reader is not None and self._reader.at_eof())

    async def send(self, objects: list[codec.InfoObject], *, wait: bool = True) -> int | None:
        """One data frame with ``objects``; returns the centre's command (3 confirm, 6 deny), ``None`` if silent."""
        if self.silent:
            return None
        return await self.send_raw(codec.encode_objects(objects), wait=wait)

    async def send_raw(self, data: bytes, *, command: int = codec.SEND_DATA, wait: bool = True) -> int | None:
        assert self._writer is not None, "not connected"
        self._serial = (self._serial + 1) & 0xFFFF
        serial = self._serial
        frame = bytearray(codec.encode_frame(serial, command, self.address, self.centre, data, when=datetime.now()))
        if self.corrupt:
            frame[-3] = (frame[-3] + 1) & 0xFF
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[serial] = future
        self._writer.write((b"\x00\x13\x37" if self.garbage else b"") + bytes(frame))
        await self._writer.drain()
        if not wait:
            return None
        try:
            async with asyncio.timeout(self.answer_timeout_s):
                return await future
        finally:
            self._pending.pop(serial, None)

    async def _read(self) -> None:
        assert self._reader is not None and self._writer is not None
        buf = b""
        while True:
            data = await self._reader.read(4096)
            if not data:
                for future in self._pending.values():
                    if not future.done():
                        future.set_exception(ConnectionResetError("the centre closed the connection"))
                return
            buf += data
            while True:
                scan = codec.scan_frame(buf)
                if scan.verdict is not Verdict.OK:
                    buf = buf[scan.skipped + (scan.length if scan.verdict is Verdict.CORRUPT else 0):]
                    if scan.verdict is not Verdict.CORRUPT:
                        break
                    continue
                buf = buf[scan.skipped + scan.length :]
                frame: codec.Frame = scan.frame
                self.answers.append(frame.command)
                if frame.command == codec.CONTROL:
                    flag, objects = codec.decode_objects(frame.data)
                    if flag == codec.SYNC_TIME and objects:
                        self.clock_set.append(getattr(objects[0], "time", None))
                    self._writer.write(codec.confirm(frame, source=self.address, when=datetime.now()))
                    continue
                future = self._pending.get(frame.serial)
                if future is not None and not future.done():
                    future.set_result(frame.command)
