"""Child process for the crash test: ingest numbered readings while uploading; print each ack.

    python tests/integration/crash_ingestor.py CONFIG SECRETS [--drain]

Each reading's value is its sequence number. After ``append_readings`` returns (the store's
acknowledgement) it prints ``ACK <first> <last>``. On start it continues after the highest
number already in the store, so numbers are never reused. ``--drain`` ingests nothing and exits
once the uplink has delivered everything.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from edge.config import load_config
from edge.records import Reading
from edge.store import Store
from edge.uplink import Uplink
from tests.helpers.sql import sql_one

BATCH = 100


async def main(config_path: Path, secrets_path: Path, drain: bool) -> None:
    config = load_config(config_path, secrets_path)
    async with Store.from_config(config.store) as store:
        row = await sql_one(store, "SELECT max(value) FROM readings WHERE device_id='crash'")
        seq = int(row[0]) if row and row[0] is not None else 0
        async with Uplink.from_config(store, config) as uplink:
            if drain:
                while not await uplink.drained():
                    await asyncio.sleep(0.05)
                print("DRAINED", flush=True)
                return
            while True:
                now = datetime.now(UTC)
                batch = [Reading("crash", "seq", float(seq + i + 1), "1", now) for i in range(BATCH)]
                await store.append_readings(batch)
                print(f"ACK {seq + 1} {seq + BATCH}", flush=True)
                seq += BATCH
                uplink.wake()
                await asyncio.sleep(0.005)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), "--drain" in sys.argv))
