"""Starting simulators: files appear whole, and a failed start never leaves a process behind (issue 10 defect 11)."""

from __future__ import annotations

import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edge.processes import NotReady, wait_ready
from simulators.platform.tls import make_tls_files


def test_ca_file_is_never_seen_half_written(tmp_path: Path) -> None:
    """A reader polling for ca.pem (as the test helper and the demo do) must never load a partial file."""
    errors: list[BaseException] = []
    for round_ in range(5):
        folder = tmp_path / f"tls{round_}"
        done = threading.Event()

        def reader(ca: Path = folder / "ca.pem", finished: threading.Event = done) -> None:
            while not finished.is_set() or not ca.exists():
                if ca.exists():
                    try:
                        ssl.create_default_context(cafile=str(ca))
                    except (ssl.SSLError, OSError) as exc:
                        errors.append(exc)
                        return

        thread = threading.Thread(target=reader)
        thread.start()
        make_tls_files(folder)
        done.set()
        thread.join(10)
        assert not list(folder.glob(".*.tmp")), "a temporary file was left behind"
    assert errors == []


def test_tls_files_are_only_ever_written_under_a_temporary_name(tmp_path: Path, monkeypatch) -> None:
    """Deterministic form of the race above: no final name is ever opened for writing; each appears by rename."""
    import builtins
    import os

    opened_for_write: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, mode="r", *args, **kwargs):
        if any(m in str(mode) for m in "wax+"):
            opened_for_write.append(Path(file).name)
        return real_open(file, mode, *args, **kwargs)

    def spy_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR):
            opened_for_write.append(Path(path).name)
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    files = make_tls_files(tmp_path / "tls")
    monkeypatch.undo()
    finals = {files.ca_cert.name, files.cert.name, files.key.name}
    assert opened_for_write and not finals & set(opened_for_write), opened_for_write
    assert oct(files.key.stat().st_mode & 0o777) == "0o600"


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_child_that_never_gets_ready_is_stopped() -> None:
    child = _sleeper()
    with pytest.raises(NotReady, match="did not become ready"):
        wait_ready(child, lambda: False, what="sleeper", timeout_s=0.3)
    assert child.poll() is not None


def test_probe_errors_mean_not_yet_and_still_stop_the_child_at_the_deadline() -> None:
    child = _sleeper()

    def probe() -> bool:
        raise ssl.SSLError("no certificate or crl found")

    with pytest.raises(NotReady):
        wait_ready(child, probe, what="sleeper", timeout_s=0.3)
    assert child.poll() is not None


def test_an_interrupted_wait_stops_the_child() -> None:
    child = _sleeper()
    calls = 0

    def probe() -> bool:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt  # the person pressed Ctrl-C during start-up
        return False

    with pytest.raises(KeyboardInterrupt):
        wait_ready(child, probe, what="sleeper", timeout_s=10)
    assert child.poll() is not None


def test_a_child_that_exits_is_reported_with_its_code() -> None:
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(NotReady, match="exited with code 3"):
        wait_ready(child, lambda: False, what="quitter", timeout_s=10)
