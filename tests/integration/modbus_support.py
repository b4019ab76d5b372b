"""Helpers for the Modbus integration tests: socat pty pairs, a frame replayer, device configs.

The sink is the stage boundary (what a source hands to the pipeline), recorded in memory; it is
not a stand-in for a device. Devices are real: the simulator or the replayer over real sockets
and pseudo-terminals.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import yaml

from drivers.modbus.codec import RTU_REQUEST_LENGTH, crc_ok, rtu_exception, rtu_read_response
from edge.config.devices import DeviceConfig
from simulators.modbus.servers import open_raw_pty
from tests.helpers.sink import RecordingSink
from tests.helpers.waiting import eventually

__all__ = ["RecordingSink", "Replayer", "device", "known_frames", "run_for", "run_until", "socat_pair"]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "modbus"


def device(device_id: str, bus: str, profile: str, unit_id: int, *, category: str = "electricity",
           period: float = 0.5, timeout: float = 0.3, retries: int = 1, building: str = "1",
           **extra: Any) -> DeviceConfig:
    return DeviceConfig(
        id=device_id, name=device_id, bus=bus, profile=profile, category=category,  # type: ignore[arg-type]
        location={"building": building}, unit_id=unit_id, poll_interval_s=period, timeout_s=timeout,
        retries=retries, **extra,
    )


async def run_until(source: Any, sink: Any, check: Callable[[], bool], *, what: str, timeout: float = 15.0) -> None:
    """Run ``source`` until ``check()`` holds (or fail after ``timeout``), then cancel it."""
    task = asyncio.create_task(source.run(sink))
    try:
        await eventually(check, timeout=timeout, what=what)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_for(source: Any, sink: Any, seconds: float) -> float:
    """Run ``source`` for ``seconds``, cancel it, and return how long the cancellation took.

    Only for tests that measure time itself (backoff spacing, shutdown speed); others use ``run_until``.
    """
    task = asyncio.create_task(source.run(sink))
    await asyncio.sleep(seconds)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return loop.time() - t0


@contextlib.asynccontextmanager
async def socat_pair(directory: Path) -> AsyncIterator[tuple[str, str]]:
    """A pty pair: (gateway end, device end) as symlinks in ``directory``."""
    socat = shutil.which("socat")
    assert socat, "socat is required (apt-get install socat)"
    a, b = str(directory / "gw"), str(directory / "dev")
    proc = await asyncio.create_subprocess_exec(
        socat, "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            if os.path.exists(a) and os.path.exists(b):
                break
            await asyncio.sleep(0.01)
        else:
            raise RuntimeError("socat did not create the pty pair")
        yield a, b
    finally:
        proc.terminate()
        await proc.wait()


def _words(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


class Replayer:
    """Answers RTU reads on a pty from fixed register words (unlisted registers read 0).

    It answers at once (no baud timing); exceptions or silence can be set per unit.
    """

    def __init__(self, path: str, images: dict[int, dict[int, dict[int, bytes]]]) -> None:
        self.path = path
        self.images = images  # unit -> fc -> address -> 2 bytes
        self.requests: list[tuple[int, int, int, int]] = []
        self.exceptions: dict[int, int] = {}
        self.silent: set[int] = set()
        self._fd: int | None = None
        self._buf = b""

    @classmethod
    def from_fixture(cls, path: str, entries: list[dict[str, Any]]) -> Replayer:
        images: dict[int, dict[int, dict[int, bytes]]] = {}
        for entry in entries:
            unit_image = images.setdefault(int(entry["unit_id"]), {})
            for fc, regs in entry["registers"].items():
                image = unit_image.setdefault(int(fc), {})
                for address, words in regs.items():
                    data = _words(words)
                    for i in range(0, len(data), 2):
                        image[int(address) + i // 2] = data[i : i + 2]
        return cls(path, images)

    def start(self) -> None:
        fd = open_raw_pty(self.path)
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._readable)

    def stop(self) -> None:
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None

    def _readable(self) -> None:
        assert self._fd is not None
        try:
            self._buf += os.read(self._fd, 4096)
        except OSError:
            return
        while len(self._buf) >= RTU_REQUEST_LENGTH:
            frame, self._buf = self._buf[:RTU_REQUEST_LENGTH], self._buf[RTU_REQUEST_LENGTH:]
            if not crc_ok(frame):
                self._buf = b""
                return
            unit, fc = frame[0], frame[1]
            address, count = struct.unpack(">HH", frame[2:6])
            self.requests.append((unit, fc, address, count))
            if unit in self.silent or unit not in self.images:
                continue
            if unit in self.exceptions:
                os.write(self._fd, rtu_exception(unit, fc, self.exceptions[unit]))
                continue
            image = self.images[unit].get(fc, {})
            data = b"".join(image.get(a, b"\x00\x00") for a in range(address, address + count))
            os.write(self._fd, rtu_read_response(unit, fc, data))


def known_frames() -> list[dict[str, Any]]:
    return yaml.safe_load((FIXTURES / "known_frames.yaml").read_text(encoding="utf-8"))
