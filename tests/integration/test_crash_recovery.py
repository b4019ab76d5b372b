"""kill -9 at random points, 20 times, while the platform now and then answers 2xx without a valid
acknowledgement (HTML, truncated JSON, a wrong count): every acknowledged record reaches the platform
exactly once."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.config import write_estate
from tests.helpers.platform import PlatformSim

REPO = Path(__file__).resolve().parents[2]
INGESTOR = Path(__file__).with_name("crash_ingestor.py")


@pytest.mark.slow
def test_sigkill_twenty_times_loses_and_duplicates_nothing(tmp_path: Path, platform_sim: PlatformSim) -> None:
    config, secrets = write_estate(tmp_path, platform_url=platform_sim.url, ca=platform_sim.ca,
                                   extra={"store": {"batch_max_delay_ms": 2}})
    rng = random.Random(20261122)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    acked: set[int] = set()
    for _round in range(20):
        # Between correct answers: a captive portal's HTML, a truncated reply, a count one short.
        platform_sim.faults(ack_html=rng.randint(0, 1), ack_truncated=rng.randint(0, 1),
                            ack_wrong_count=rng.randint(0, 1))
        proc = subprocess.Popen([sys.executable, str(INGESTOR), str(config), str(secrets)], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(rng.uniform(0.6, 1.6))  # start-up takes ~0.5 s, so some kills land before the first ack
        proc.kill()  # SIGKILL: no cleanup, no flush, no goodbye
        out, _ = proc.communicate(timeout=10)
        for line in out.splitlines():
            if line.startswith("ACK "):
                first, last = map(int, line.split()[1:])
                acked.update(range(first, last + 1))
    assert len(acked) > 1000, "the ingestor never got going"

    drain = subprocess.run([sys.executable, str(INGESTOR), str(config), str(secrets), "--drain"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
    assert "DRAINED" in drain.stdout, drain.stderr[-2000:]

    with sqlite3.connect(tmp_path / "edge.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Contract v3: one record per ingested batch of 100 (one device, one instant), read back per reading.
    ids = [r["id"] for r in platform_sim.records("telemetry") if r["device_id"] == "crash"]
    values = [int(r["value"]) for r in platform_sim.readings("crash")]
    assert len(ids) == len(set(ids)), "a record id reached the platform twice"
    assert len(values) == len(set(values)), "a sequence number was counted twice"
    missing = acked - set(values)
    assert not missing, f"{len(missing)} acknowledged records never reached the platform, e.g. {sorted(missing)[:5]}"
    counters = platform_sim.stats()["counters"]
    # The kills did interrupt uploads: the platform saw retries it had to deduplicate.
    assert counters.get("batches", 0) > 0
    assert sum(counters.get(f"injected_ack_{k}", 0) for k in ("html", "truncated", "wrong_count")) >= 5
