"""Two demos at once on one host: each picks its own free ports and keeps every file (RS-485 pty links
included) in its own folder, so neither breaks the other; each platform simulator's ``/_sim`` page
shows the latest records per kind, alarms with their evidence pictures.

A real run of ``estate-edge demo`` twice (every simulator is a separate process). Each is given up to
``DURATION_S`` (the issue's five minutes, for two busy cores) and stopped with SIGTERM, as Ctrl-C
would, as soon as both pages show a picture: about 90 s on an idle machine.
"""

from __future__ import annotations

import os
import re
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
DURATION_S = 300


def _banner(log: Path, proc: subprocess.Popen[bytes], timeout_s: float = 120) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        if "stop with Ctrl-C" in text:
            return dict(re.findall(r"^  (.+?): +(.+)$", text.split("=== estate-edge demo ===", 1)[1], re.M))
        assert proc.poll() is None, text[-3000:]
        time.sleep(0.1)
    raise AssertionError(f"no banner:\n{log.read_text()[-3000:]}")


def _picture_on_sim_page(base: str, ca: Path, deadline: float) -> bytes:
    """Poll the /_sim page until an alarm row shows a picture; return that picture's bytes."""
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), trust_env=False, timeout=10) as client:
        while time.monotonic() < deadline:
            page = client.get(f"{base}/_sim").text
            alarms = page.split("<h2 id='alarm'>", 1)[1].split("<h2 id=", 1)[0]
            found = re.search(r"<img alt='evidence' loading='lazy' src='(/_sim/records/[^']+/evidence)'", alarms)
            if found:
                picture = client.get(base + found.group(1))
                assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
                return picture.content
            time.sleep(0.1)
    raise AssertionError(f"no alarm with a picture on {base}/_sim:\n{page[-2000:]}")


# One device on each kind of line: the TCP converter, the shared RS-485 line, DL/T 645, CJ/T 188.
EVERY_LINE = {"B1-EM-00", "B2-EM-01", "B3-EM-301", "B3-WM-301"}


def _telemetry_devices(db_path: Path) -> set[str]:
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1) as db:
            return {r[0] for r in db.execute("SELECT DISTINCT json_extract(payload, '$.device_id') FROM records "
                                             "WHERE kind='telemetry'")}
    except sqlite3.Error:
        return set()


def _wait_for_devices(db_path: Path, wanted: set[str], deadline: float) -> None:
    while time.monotonic() < deadline and not wanted <= _telemetry_devices(db_path):
        time.sleep(0.1)


@pytest.mark.slow
def test_two_demos_at_once_are_both_healthy(tmp_path: Path, shared_dir: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EDGE_SHARED_DIR": str(shared_dir)}
    runs = []
    for name in ("a", "b"):
        log = tmp_path / f"demo-{name}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "demo", "--workdir", str(tmp_path / name), "--duration", str(DURATION_S)],
            cwd=REPO, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115 - the child owns it
        runs.append((name, proc, log))
    try:
        banners = {name: _banner(log, proc) for name, proc, log in runs}
        # Every port differs between the runs, and every path is inside the run's own folder.
        ports = {name: set(re.findall(r"127\.0\.0\.1:(\d+)", " ".join(b.values()))) for name, b in banners.items()}
        assert len(ports["a"]) >= 8 and not ports["a"] & ports["b"], ports
        for name, banner in banners.items():
            lines = [v for k, v in banner.items() if k.startswith("RS-485 line")]
            assert len(lines) == 3 and all(v.startswith(str(tmp_path / name)) for v in lines), banner
            assert "first start: open the panel's /setup page" in (tmp_path / f"demo-{name}.log").read_text()
        deadline = time.monotonic() + DURATION_S - 10
        for name, banner in banners.items():
            base = banner["platform simulator (view)"].removesuffix("/_sim")
            picture = _picture_on_sim_page(base, tmp_path / name / "platform-tls" / "ca.pem", deadline)
            assert picture[:3] == b"\xff\xd8\xff", name
        for name, _proc, _log in runs:  # every kind of line has reported (a 2,400-baud meter line is slow to start)
            _wait_for_devices(tmp_path / name / "platform-sim.db", EVERY_LINE, deadline)
        for _name, proc, _log in runs:
            proc.terminate()
        for _name, proc, log in runs:
            assert proc.wait(timeout=120) == 0, log.read_text()[-4000:]
    finally:
        for _name, proc, _log in runs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
    for name, _proc, log in runs:
        output = log.read_text(encoding="utf-8", errors="replace")
        assert "stopped cleanly" in output and "Traceback" not in output, output[-4000:]
        with sqlite3.connect(tmp_path / name / "platform-sim.db") as db:
            devices = {r[0] for r in db.execute("SELECT DISTINCT json_extract(payload, '$.device_id') FROM records "
                                                "WHERE kind='telemetry'")}
        # Both runs read every kind of line: the TCP converter, the shared RS-485 line, DL/T 645, CJ/T 188.
        assert devices >= EVERY_LINE, (name, sorted(devices))
