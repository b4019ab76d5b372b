"""A real daemon on a real full file system (issue 10 defect 2): a small tmpfs, mounted because we run as root.

The story an estate's control room sees: the platform is down, so everything is buffered; the disk
fills up (a log, a core dump, another program); the daemon is restarted on the full disk (systemd
after a crash, or a power cut). It must start, raise ``store.disk_full``, keep every alarm, and when
space comes back clear the alarm and drain everything to the platform. Without root (no mount) the
same mechanism is tested with SQLite's ``max_page_count`` in ``tests/unit/store/test_disk_full.py``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.config import write_estate
from tests.helpers.platform import PlatformSim

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; tests/unit/store/test_disk_full.py covers the mechanism")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> Path:
    """Write a filler file until the file system says ENOSPC.

    Unbuffered: a buffered file that hit ENOSPC keeps the unwritten rest in its buffer and raises
    ENOSPC again when it is closed (this once failed the test in CI, with the daemon writing beside it).
    """
    filler = folder / "filler.bin"
    for size in (256 * 1024, 4096):  # large chunks, then top up the last partial one
        with open(filler, "ab", buffering=0) as fh:
            try:
                while fh.write(b"\0" * size):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def _start(config: Path, secrets: Path, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "edge.cli", "run", str(config), "--secrets", str(secrets)],
                            cwd=REPO, stdout=open(log, "w"), stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait(predicate, what: str, log: Path, timeout: float = 40.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.Error):
            value = predicate()
            if value:
                return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; log tail:\n{log.read_text()[-3000:]}")


def _rows(db: Path, sql: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        return conn.execute(sql).fetchall()


def _stop(proc: subprocess.Popen[str], log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert code == 0, text[-3000:]


def _estate(tmp_path: Path, small_disk: Path, platform_sim: PlatformSim) -> tuple[Path, Path]:
    devices = [{"id": f"B1-EM-{i:02d}", "name": f"电表{i}", "bus": "syn", "category": "electricity",
                "location": {"building": "1栋"}, "poll_interval_s": 0.05} for i in range(10)]
    devices.append({"id": "B1-EM-DEAD", "name": "离线电表", "bus": "syn", "category": "electricity",
                    "location": {"building": "1栋"}, "poll_interval_s": 0.2})
    return write_estate(tmp_path, platform_url=platform_sim.url, ca=platform_sim.ca, extra={
        "store": {"path": str(small_disk / "edge.db"), "evidence_dir": str(small_disk / "evidence"),
                  "min_free_mb": 2, "reserve_mb": 1, "maintenance_interval_s": 0.3},
        "buses": [{"kind": "synthetic", "id": "syn", "fail_devices": ["B1-EM-DEAD"]}],
        "devices": devices,
    })


def _run_until_the_disk_fills(config: Path, secrets: Path, small_disk: Path, log: Path) -> Path:
    """Platform down, a device offline, then the disk fills up: run until ``store.disk_full`` is raised; the filler."""
    db = small_disk / "edge.db"
    proc = _start(config, secrets, log)
    try:
        _wait(lambda: "estate-edge running" in log.read_text(), "start", log)
        _wait(lambda: _rows(db, "SELECT count(*) FROM alarms WHERE code='device.offline'")[0][0], "offline alarm", log)
        # The daemon is held still while the disk fills: once it notices, it releases its 1 MB reserve
        # for SQLite, and a filler still writing would take that too. Then not one byte is left, the case
        # the store does not survive (docs/reliability.md, "Disk full": it exits, systemd restarts it).
        proc.send_signal(signal.SIGSTOP)
        try:
            filler = _fill(small_disk)
        finally:
            proc.send_signal(signal.SIGCONT)
        _wait(lambda: _rows(db, "SELECT count(*) FROM alarms WHERE code='store.disk_full' AND is_open=1")[0][0],
              "store.disk_full raised", log)
    finally:
        _stop(proc, log)
    return filler


def _disk_full_steps(db: Path, state: str) -> int:
    return _rows(db, f"SELECT count(*) FROM alarm_log WHERE code='store.disk_full' AND state='{state}'")[0][0]


def test_full_disk_restart_raises_clears_keeps_alarms_and_drains(tmp_path: Path, small_disk: Path,
                                                                platform_sim: PlatformSim) -> None:
    config, secrets = _estate(tmp_path, small_disk, platform_sim)
    db = small_disk / "edge.db"
    platform_sim.faults(outage=True)
    log1 = tmp_path / "run1.log"
    filler = _run_until_the_disk_fills(config, secrets, small_disk, log1)
    alarms_before = {r[0] for r in _rows(db, "SELECT id FROM alarm_log")}
    # What the stop freed (its last WAL checkpoint) is taken again, all but half a megabyte: the restart
    # finds the disk below the store's 2 MB mark whatever the stop left. (On no byte free at all the
    # daemon cannot write to start, exits and is restarted by systemd until there is room.)
    _fill(small_disk)
    os.truncate(filler, filler.stat().st_size - 512 * 1024)

    # Restart on the full disk: it starts, and the disk-full alarm is open (restored, not raised twice).
    log2 = tmp_path / "run2.log"
    proc = _start(config, secrets, log2)
    try:
        _wait(lambda: "estate-edge running" in log2.read_text(), "start on a full disk", log2)
        # It polls and tries to write on the full disk, notices, and keeps running in disk-full mode.
        _wait(lambda: "store: disk full" in log2.read_text(), "disk-full mode after the restart", log2)
        assert proc.poll() is None, log2.read_text()[-3000:]
        filler.unlink()  # space comes back
        _wait(lambda: _disk_full_steps(db, "cleared"), "store.disk_full cleared", log2)
        platform_sim.faults()  # platform back: everything drains
        alarm_ids = {r[0] for r in _rows(db, "SELECT id FROM alarm_log")}
        assert alarms_before <= alarm_ids, "an alarm step was lost"

        def at_platform() -> bool:
            return alarm_ids <= {r["id"] for r in platform_sim.records("alarm")}

        _wait(at_platform, "every alarm step at the platform", log2, timeout=60)
    finally:
        _stop(proc, log2)
    assert _disk_full_steps(db, "raised") == 1, "store.disk_full was raised more than once for one episode"
    paused = _rows(db, "SELECT value FROM counters WHERE name='store.telemetry_paused'")
    assert paused and paused[0][0] > 0
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_space_freed_while_the_daemon_was_down_clears_the_alarm_at_start(tmp_path: Path, small_disk: Path,
                                                                         platform_sim: PlatformSim) -> None:
    """The usual way out of a full disk: stop, clean up, start again. The alarm the first run left open
    clears at the start of the second, once, with nothing raised again."""
    config, secrets = _estate(tmp_path, small_disk, platform_sim)
    db = small_disk / "edge.db"
    platform_sim.faults(outage=True)
    log1 = tmp_path / "run1.log"
    _run_until_the_disk_fills(config, secrets, small_disk, log1).unlink()
    log2 = tmp_path / "run2.log"
    proc = _start(config, secrets, log2)
    try:
        _wait(lambda: "estate-edge running" in log2.read_text(), "start", log2)
        _wait(lambda: _disk_full_steps(db, "cleared"), "store.disk_full cleared at start", log2)
        assert not _rows(db, "SELECT count(*) FROM alarms WHERE code='store.disk_full' AND is_open=1")[0][0]
    finally:
        _stop(proc, log2)
    assert _disk_full_steps(db, "raised") == 1 and _disk_full_steps(db, "cleared") == 1
    assert "store: disk full" not in log2.read_text()
