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
import subprocess
import time
from collections.abc import Callable


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
