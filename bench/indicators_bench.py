"""The indicator fold on EMQX Neuron's benchmark shape: what folding one reading costs.

    python bench/indicators_bench.py [--devices 500] [--points 30] [--seconds 30]

Every ``interval_s`` (30 s by default) the indicator engine folds the readings accepted since its
last pass into hourly series. On the daemon bench's farm (500 devices x 30 points a second) that is
450,000 readings a pass, and it showed as a CPU spike every 30 s. The store is filled once with
that many readings (real SQLite file, the store's own writer: one row per poll), copied, and
folded twice in this process: by the reading-by-reading path (the baseline: every poll's points
parsed and walked) and by the counted path (the fold's own: presence counted per poll from its
stored count and shape, values parsed only for devices that keep them). CPU time of the whole
process (the reader thread included):

    BENCH indicator_fold_us_per_reading <us> us baseline=<reading-by-reading, same run>
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.clock import ManualClock  # noqa: E402
from edge.config import EstateConfig  # noqa: E402
from edge.indicators import IndicatorEngine  # noqa: E402
from edge.records import Quality, Reading  # noqa: E402
from edge.store import Store  # noqa: E402

T0 = datetime(2026, 3, 1, 0, 0, 5, tzinfo=UTC)


def estate(devices: int) -> EstateConfig:
    return EstateConfig.model_validate({
        "estate": {"id": "EST-BENCH", "name": "bench", "gateway_id": "GW-BENCH", "timezone": "Asia/Shanghai"},
        "platform": {"url": "https://127.0.0.1:9", "client_id": "gw"},
        "buses": [{"kind": "synthetic", "id": "bus"}],
        "devices": [{"id": f"n{i}", "name": f"bench meter {i}", "bus": "bus", "category": "other",
                     "location": {"building": "bench"}, "poll_interval_s": 1} for i in range(devices)],
    })


async def fill(path: Path, clock: ManualClock, devices: int, points: int, seconds: int) -> None:
    store = Store(path, clock=clock, batch_max_delay_ms=1)
    await store.open()
    for s in range(seconds):  # one second of polls per commit (the fold reads rows, not commits)
        ts = T0 + timedelta(seconds=s)
        await store.append_readings([Reading(f"n{d}", f"tag{p:02d}", float(p), "", ts, Quality.GOOD)
                                     for d in range(devices) for p in range(points)])
    await store.close()


async def fold(path: Path, clock: ManualClock, config: EstateConfig, counted: bool) -> tuple[float, int]:
    """CPU seconds of one fold of everything in ``path``, and the readings it folded."""
    store = Store(path, clock=clock)
    await store.open()
    try:
        engine = IndicatorEngine(store, config, clock=clock)
        engine.counted_fold = counted
        await engine.start()
        started = time.process_time()
        await engine.fold()
        return time.process_time() - started, engine.stats.readings_folded
    finally:
        await store.close()


async def run(devices: int, points: int, seconds: int) -> None:
    config = estate(devices)
    clock = ManualClock(T0 + timedelta(seconds=seconds + 1))
    with tempfile.TemporaryDirectory(prefix="indicators-bench-") as tmp:
        filled = Path(tmp) / "filled.db"
        await fill(filled, clock, devices, points, seconds)
        results = {}
        for counted in (False, True):
            copy = Path(tmp) / f"fold-{counted}.db"
            shutil.copy(filled, copy)
            results[counted] = await fold(copy, clock, config, counted)
    (base_cpu, base_n), (cpu, n) = results[False], results[True]
    assert n == base_n == devices * points * seconds, (n, base_n)
    print(f"BENCH indicator_fold_us_per_reading {1e6 * cpu / n:.3f} us baseline={1e6 * base_cpu / base_n:.3f}",
          flush=True)
    print(f"# {n} readings ({devices} devices x {points} points x {seconds} s) folded in {cpu:.2f} s of CPU "
          f"(reading by reading: {base_cpu:.2f} s); at {devices * points} readings/s that is "
          f"{100 * cpu / seconds:.1f} % of a core (baseline {100 * base_cpu / seconds:.1f} %)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--points", type=int, default=30)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(run(args.devices, args.points, args.seconds))


if __name__ == "__main__":
    main()
