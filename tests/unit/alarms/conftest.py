"""Fixtures for the alarm tests: a real store on a manual clock, a capturing HTTP server, Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from edge.clock import ManualClock
from edge.processes import held_ports
from edge.store import Store

T0 = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)  # 09:00 in Asia/Shanghai


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def store(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Store]:
    async with Store(tmp_path / "edge.db", clock=clock, batch_max_delay_ms=1) as s:
        yield s


@dataclass
class Captured:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass
class CaptureServer:
    """A tiny real HTTP/1.1 server on 127.0.0.1 that records requests and answers from a script."""

    port: int = 0
    requests: list[Captured] = field(default_factory=list)
    # Each answer: (status, JSON body). When the script runs out, the last answer repeats.
    answers: list[tuple[int, Any]] = field(default_factory=lambda: [(200, {"errcode": 0, "errmsg": "ok"})])
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                parts = urlsplit(target)
                self.requests.append(Captured(method, parts.path, parse_qs(parts.query), headers, body))
                status, answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
                payload = json.dumps(answer).encode()
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
                await writer.drain()
                self.arrived.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} request(s), got {len(self.requests)}")
            await asyncio.sleep(0.01)


@pytest.fixture
async def http_capture() -> AsyncIterator[CaptureServer]:
    capture = CaptureServer()
    server = await asyncio.start_server(capture.handle, "127.0.0.1", 0)
    capture.port = server.sockets[0].getsockname()[1]
    try:
        yield capture
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()


def _free_port() -> int:
    with held_ports() as free:
        return free()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[int]:
    """A real Mosquitto broker on a free port (apt package mosquitto; CI installs it)."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.fail("mosquitto is not installed (apt-get install mosquitto)")
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            break
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("mosquitto did not start")
        time.sleep(0.05)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


