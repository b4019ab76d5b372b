"""Start a child process (a simulator, a broker) and wait until it is really ready, never leaking it.

Kernel, not ``simulators``: the demo launcher (``edge.demo``) starts its simulators with it, and nothing
that ships may import ``simulators`` (import-linter contract in ``pyproject.toml``). The simulators are
started as commands (``python -m simulators.<kind>``), never imported.

Two rules learned from a flaky test that left a platform simulator running after pytest exited:

* readiness is a question the child answers (a health endpoint, a line in its log), polled with
  every error of the probe treated as "not yet" (a half-written CA file raises ``ssl.SSLError``,
  not an HTTP error);
* whatever goes wrong while waiting (the child exits, the deadline passes, the probe raises
  something unexpected, the caller is interrupted) the child is killed before the error leaves.
"""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol


class NotReady(RuntimeError):
    """The child exited or did not become ready in time (it has been stopped)."""


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; always reaps the child."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


def wait_ready(process: subprocess.Popen[bytes], ready: Callable[[], bool], *, what: str, timeout_s: float = 30.0,
               interval_s: float = 0.05, log_hint: str = "") -> subprocess.Popen[bytes]:
    """Poll ``ready()`` until it is true; on any failure stop the child and raise ``NotReady``."""
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise NotReady(f"{what} exited with code {process.returncode}{log_hint}")
            with contextlib.suppress(Exception):  # every probe error means "not yet" (module docstring)
                if ready():
                    return process
            time.sleep(interval_s)
        raise NotReady(f"{what} did not become ready within {timeout_s:.0f} s{log_hint}")
    except BaseException:
        stop_process(process)
        raise


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux default 32768-60999)."""
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return (low, high) if low > 10_100 else (32768, 60999)


class PortPicker(Protocol):
    def __call__(self, kind: int = socket.SOCK_STREAM) -> int: ...


@contextlib.contextmanager
def held_ports() -> Iterator[PortPicker]:
    """``free(kind)`` gives a free port for a child to listen on; all stay bound until the block ends.

    Chosen at random below the kernel's ephemeral range: a port handed out by ``bind(0)`` is released
    before the child that will listen on it starts, and in between any outgoing connection (an upload,
    another test's client) may take it as its local port. Below the range only another listener can,
    and the random choice makes two runs meeting on one port unlikely.
    """
    held: list[socket.socket] = []
    low, _ = ephemeral_range()
    rng = random.SystemRandom()

    def free(kind: int = socket.SOCK_STREAM) -> int:
        for _ in range(200):
            sock = socket.socket(socket.AF_INET, kind)
            try:
                sock.bind(("127.0.0.1", rng.randrange(10_000, low)))
            except OSError:
                sock.close()
                continue
            held.append(sock)
            return int(sock.getsockname()[1])
        sock = socket.socket(socket.AF_INET, kind)  # a crowded host: let the kernel choose
        held.append(sock)
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

    try:
        yield free
    finally:
        for sock in held:
            sock.close()
