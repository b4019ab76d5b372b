"""The README's first command, end to end: `estate-edge demo` with every simulator.

Runs the demo for a bounded time and then reads what the platform simulator accepted: telemetry
from the demo estate's devices and camera alarms with their evidence images.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIMIT_S = 300  # the demo stops by itself after this; the test stops it as soon as both camera alarms arrived


def _camera_alarms_at_platform(db_path: Path) -> bool:
    if not db_path.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1) as db:
            codes = {r[0] for r in db.execute("SELECT json_extract(payload, '$.code') FROM records WHERE kind='alarm'")}
    except sqlite3.Error:
        return False
    return {"fire.ebike_entry", "fire.lane_blocked"} <= codes


@pytest.mark.slow
def test_demo_runs_every_simulator_and_alarms_reach_the_platform(tmp_path: Path, shared_dir: Path) -> None:
    """Waits for the camera alarms at the platform (not for a fixed time: a loaded machine analyses slower),
    then stops the demo as a person would, with Ctrl-C's signal."""
    workdir = tmp_path / "demo"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EDGE_SHARED_DIR": str(shared_dir)}
    log = tmp_path / "demo.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "demo", "--workdir", str(workdir), "--duration", str(LIMIT_S)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
        )
        try:
            deadline = time.monotonic() + LIMIT_S
            while time.monotonic() < deadline and proc.poll() is None:
                if _camera_alarms_at_platform(workdir / "platform-sim.db"):
                    time.sleep(3)  # a few more seconds of telemetry and evidence uploads
                    break
                time.sleep(1)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            returncode = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = log.read_text()
    assert returncode == 0, output[-4000:]
    assert "panel / status page:" in output and "/_sim" in output
    assert "stopped cleanly" in output
    assert "Traceback" not in output, output[-4000:]

    with sqlite3.connect(workdir / "platform-sim.db") as db:
        kinds = dict(db.execute("SELECT kind, count(*) FROM records GROUP BY kind").fetchall())
        devices = {r[0] for r in db.execute("SELECT json_extract(payload, '$.device_id') FROM records "
                                            "WHERE kind='telemetry'")}
        alarms = [json.loads(p) for (p,) in db.execute("SELECT payload FROM records WHERE kind='alarm'")]
        pictures = dict(db.execute("SELECT id, length(jpeg) FROM evidence").fetchall())
    assert kinds.get("telemetry", 0) > 50
    assert {"CAM-B1-LANE", "CAM-B2-LOBBY"} <= devices
    assert {d for d in devices if not d.startswith("CAM-")}, "no meter or sensor telemetry reached the platform"
    raised = {a["code"]: a for a in alarms if a["state"] == "raised"}
    assert "fire.ebike_entry" in raised and "fire.lane_blocked" in raised, sorted(raised)
    for code in ("fire.ebike_entry", "fire.lane_blocked"):
        evidence = raised[code].get("evidence")
        assert evidence and evidence["content_type"] == "image/jpeg" and evidence["bytes"] > 1000
        assert pictures.get(evidence["id"]) == evidence["bytes"]  # uploaded once, referenced by id
