"""Issue 10, defect 8: ``estate-edge run`` that cannot start says why in one line and exits non-zero.

Each case is a real ``estate-edge run`` process (as ``test_daemon_signals`` starts the daemon): a
store folder it cannot create, a CA bundle that is not there, a panel port another program holds,
a panel certificate that does not load. Each must end promptly with a non-zero exit and a line that
names the path or the port, and no traceback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from simulators.platform.tls import make_tls_files
from tests.helpers.config import write_estate
from tests.helpers.platform import free_port

REPO = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, extra: dict[str, Any], *, ca: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = {"platform": {"enabled": False}, **extra}
    config, secrets = write_estate(tmp_path, platform_url="https://127.0.0.1:9", ca=ca, extra=extra)
    return subprocess.run([sys.executable, "-m", "edge.cli", "run", str(config), "--secrets", str(secrets)],
                          cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _assert_one_clear_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode not in (0, None), output[-2000:]
    assert "Traceback" not in output, output[-3000:]
    lines = [line for line in result.stderr.splitlines() if all(n in line for n in needles)]
    assert lines, result.stderr[-2000:]
    assert "estate-edge running" not in result.stdout
    return lines[-1]  # the last word: a config warning about the same path may come before it


def test_a_store_folder_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the store's folder should be")
    store = blocker / "db" / "edge.db"
    result = _run(tmp_path, {"store": {"path": str(store)}})
    line = _assert_one_clear_line(result, str(store.parent))
    assert result.returncode == 3 and "cannot create the store folder" in line


def test_an_evidence_folder_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    result = _run(tmp_path, {"store": {"evidence_dir": str(blocker / "evidence")}})
    assert "cannot create the evidence folder" in _assert_one_clear_line(result, str(blocker / "evidence"))


def test_a_missing_ca_bundle(tmp_path: Path) -> None:
    missing = tmp_path / "certs" / "platform-ca.pem"
    result = _run(tmp_path, {"platform": {"enabled": True}}, ca=missing)
    line = _assert_one_clear_line(result, str(missing))
    assert result.returncode == 2 and "platform.ca_bundle: file not found" in line
    assert "refusing to start" in result.stderr


def test_a_busy_panel_port(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen(1)
        result = _run(tmp_path, {"panel": {"enabled": True, "host": "127.0.0.1", "port": port}})
    line = _assert_one_clear_line(result, f"127.0.0.1:{port}")
    assert result.returncode == 3 and "panel cannot listen" in line and "panel.port" in line


def test_a_panel_key_that_does_not_match_its_certificate(tmp_path: Path) -> None:
    """``check`` refuses the pair first; ``run`` does the same before opening anything."""
    tls = make_tls_files(tmp_path / "tls")
    other = make_tls_files(tmp_path / "other")
    result = _run(tmp_path, {"panel": {"enabled": True, "port": free_port(), "tls_cert": str(tls.cert),
                                       "tls_key": str(other.key)}})
    line = _assert_one_clear_line(result, str(tls.cert))
    assert result.returncode == 2 and "do not load as a pair" in line


def test_the_store_is_untouched_by_a_refused_start(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    result = _run(tmp_path, {"platform": {"enabled": True}}, ca=missing)
    assert result.returncode == 2
    assert not (tmp_path / "edge.db").exists()  # refused before anything was created
