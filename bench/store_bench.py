"""Sustained ingest through the real store API, next to raw sqlite3 executemany in the same run.

    python bench/store_bench.py [--records 300000]

The baseline writes one row per reading (schema 1's table) with executemany, WAL, synchronous=FULL,
time-ordered ULID keys and 1,000-row commits. The store side goes through ``Store.append_readings``
(poll grouping, JSON points, id minting, the group-commit writer and its thread hop) with four
concurrent producers, as buses would. The store keeps one row per device poll (schema 3), so its
cost depends on the poll size: ``store_ingest`` is the worst case, every reading a poll of its own
(a different meter each); ``store_ingest_polls30`` is the same readings as polls of 30 points.
Prints ``BENCH store_ingest <readings/s> records/s baseline=<sqlite3 rows/s> target=100000``.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.clock import to_us
from edge.ids import new_ids
from edge.records import Reading
from edge.store import Store
from edge.store.schema import MIGRATIONS

BATCH = 1000


def raw_baseline(path: Path, readings: list[Reading]) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(MIGRATIONS[0])
    ids = new_ids(len(readings))
    rows = [(i, r.device_id, r.point, r.value, r.unit, int(r.quality), to_us(r.ts)) for i, r in zip(ids, readings, strict=True)]
    started = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO readings VALUES (?,?,?,?,?,?,?)", rows[start:start + BATCH])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(rows) / elapsed


async def store_api(path: Path, readings: list[Reading], producers: int = 4) -> float:
    async with Store(path, batch_max_records=4000, batch_max_delay_ms=5, maintenance_interval_s=0) as store:
        chunks = [readings[i:i + BATCH] for i in range(0, len(readings), BATCH)]

        async def producer(k: int) -> None:
            for chunk in chunks[k::producers]:
                await store.append_readings(chunk)

        started = time.perf_counter()
        await asyncio.gather(*(producer(k) for k in range(producers)))
        elapsed = time.perf_counter() - started
        stored = await store.count("readings")
        assert stored == len(readings), (stored, len(readings))
        return len(readings) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=300_000)
    args = parser.parse_args()
    now = datetime.now(UTC)
    readings = [Reading(f"B{i % 20}-EM-{i % 500:03d}", "energy_import", float(i), "kWh", now)
                for i in range(args.records)]
    polls30 = [Reading(f"B{i // 30 % 20}-EM-{i // 30 % 500:03d}", f"p{i % 30:02d}", float(i), "kWh", now)
               for i in range(args.records)]
    with tempfile.TemporaryDirectory() as tmp:
        baseline = raw_baseline(Path(tmp) / "raw.db", readings)
        ours = asyncio.run(store_api(Path(tmp) / "store.db", readings))
        ours30 = asyncio.run(store_api(Path(tmp) / "store30.db", polls30))
    print(f"BENCH store_ingest {ours:.0f} records/s baseline={baseline:.0f} target=100000")
    print(f"BENCH store_ingest_vs_raw_pct {100 * ours / baseline:.1f} % target=30")
    print(f"BENCH store_ingest_polls30 {ours30:.0f} records/s baseline={baseline:.0f} target=100000")


if __name__ == "__main__":
    main()
