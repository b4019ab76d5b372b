"""A demo stopped while its simulators start leaves none of them running.

Found when a failed two-demos run left a camera simulator orphaned for half an hour: SIGTERM's default
action ended the demo before its clean-up, so the children it had started lived on (re-parented to init).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


def _children(pid: int) -> set[int]:
    """Live processes whose parent is ``pid`` (read from /proc)."""
    out: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_sigterm_while_simulators_start_stops_every_child(tmp_path: Path, shared_dir: Path) -> None:
    workdir = tmp_path / "demo"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EDGE_SHARED_DIR": str(shared_dir)}
    log = tmp_path / "demo.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "demo", "--workdir", str(workdir), "--duration", "120"],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            # The platform and the Modbus simulator are up, the camera simulator is starting: mid start-up.
            wait_until(lambda: (workdir / "camera-sim.log").exists() or proc.poll() is not None, timeout=60,
                       what="the camera simulator being started", poll_s=0.02)
            assert proc.poll() is None, log.read_text()[-3000:]
            assert "panel / status page:" not in log.read_text(), "the demo finished starting before the test stopped it"
            children = _children(proc.pid)
            assert len(children) >= 2, children  # at least the platform and one device simulator
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    try:
        assert code == 128 + signal.SIGTERM, log.read_text()[-3000:]
        wait_until(lambda: not any(_alive(pid) for pid in children), timeout=15, what="every child stopped")
    finally:  # if the demo failed to, stop what it left so the failure does not leak into other tests
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
