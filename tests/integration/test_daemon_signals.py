"""The daemon as installers run it: a real process, real signals, a real SQLite file."""

from __future__ import annotations

import ast
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.helpers.config import write_estate
from tests.helpers.platform import PlatformSim
from tests.helpers.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


def _device(device_id: str, bus: str, building: str) -> dict:
    return {"id": device_id, "name": device_id, "bus": bus, "category": "electricity",
            "location": {"building": building}, "poll_interval_s": 0.05}


def _start(config: Path, secrets: Path, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", str(config), "--secrets", str(secrets)],
        cwd=REPO, stdout=open(log, "w"), stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_for(log: Path, pattern: str, timeout: float = 30) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text())
        if match:
            return match
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not in log:\n{log.read_text()[-3000:]}")


def _count(db: Path, sql: str, params: tuple = ()) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql, params).fetchone()[0])


def test_sigterm_exits_cleanly_and_loses_nothing(tmp_path: Path, platform_sim: PlatformSim) -> None:
    devices = [_device(f"B{i % 2 + 1}-EM-{i:02d}", "syn", f"{i % 2 + 1}栋") for i in range(20)]
    config, secrets = write_estate(tmp_path, platform_url=platform_sim.url, ca=platform_sim.ca,
                                   extra={"devices": devices})
    log = tmp_path / "daemon.log"
    proc = _start(config, secrets, log)
    try:
        _wait_for(log, "estate-edge running")
        db = tmp_path / "edge.db"
        wait_until(lambda: _count(db, "SELECT count(*) FROM readings") > 150, timeout=30, what="150 readings stored")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - sent < 5
    finally:
        if proc.poll() is None:
            proc.kill()
    stored = int(_wait_for(log, r"stopped cleanly: (\d+) readings stored").group(1))
    assert stored > 100
    db = tmp_path / "edge.db"
    # Every reading acknowledged to a source is in the file after exit. A few more may be there:
    # writes already queued when SIGTERM cancelled their source still commit (20 devices x 2 points).
    in_file = _count(db, "SELECT count(*) FROM readings")
    assert stored <= in_file <= stored + 40
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_sighup_reload_restarts_only_what_changed(tmp_path: Path, platform_sim: PlatformSim) -> None:
    buses = [{"kind": "synthetic", "id": "syn"}, {"kind": "synthetic", "id": "syn2"}]
    devices = [_device("A-1", "syn", "1栋"), _device("B-1", "syn2", "2栋")]
    config, secrets = write_estate(tmp_path, platform_url=platform_sim.url, ca=platform_sim.ca,
                                   extra={"buses": buses, "devices": devices})
    log = tmp_path / "daemon.log"
    proc = _start(config, secrets, log)
    try:
        _wait_for(log, "estate-edge running")
        doc = yaml.safe_load(config.read_text().replace("!secret platform_client_secret", "SECRET_REF"))
        doc["devices"].append(_device("C-1", "syn2", "2栋"))
        text = yaml.safe_dump(doc, allow_unicode=True).replace("SECRET_REF", "!secret platform_client_secret")
        config.write_text(text)
        proc.send_signal(signal.SIGHUP)
        reloaded = ast.literal_eval(_wait_for(log, r"estate-edge reloaded: (.*)").group(1))
        assert reloaded["restarted"] == ["bus:syn2"]
        assert "bus:syn" in reloaded["unchanged"] and not reloaded["started"] and not reloaded["stopped"]
        # The added device is polled by the restarted bus before the next reload is tried.
        wait_until(lambda: _count(tmp_path / "edge.db", "SELECT count(*) FROM readings WHERE device_id=?", ("C-1",)) > 0,
                   timeout=30, what="readings of the added device")
        # A broken config on SIGHUP is refused; the running one keeps going.
        config.write_text(text.replace("category: electricity", "category: plasma", 1))
        proc.send_signal(signal.SIGHUP)
        _wait_for(log, "reload refused, keeping the running config")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    db = tmp_path / "edge.db"
    assert _count(db, "SELECT count(*) FROM readings WHERE device_id=?", ("C-1",)) > 0
    assert _count(db, "SELECT count(*) FROM readings WHERE device_id=?", ("A-1",)) > 0
