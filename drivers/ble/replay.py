"""A ``Scanner`` that replays recorded advertisements from a JSON-lines file instead of the radio.

Why in the driver and not only in the simulators: a BLE bus may name a recording (``replay`` in
its config) to run the whole source, its decoding, the scan list and the panel's "replay" mark,
without an adapter: the demo estate does, and an installer can replay a capture taken on site. The
tests use it because the radio is the one part that cannot run in CI.

A recording is JSON lines, one advertisement each (``#`` lines are comments)::

    {"t": 1.5, "address": "A4:C1:38:12:34:56", "rssi": -67, "name": "ATC_123456",
     "service_data": {"181a": "<hex>"}}

``t`` is seconds from the start; ``speed`` scales the waits (0: as fast as the consumer takes
them, which is what tests use: they wait for events, not time). Service data keys are 16-bit
UUIDs in hex, expanded to the 128-bit form bleak reports. A bad line is refused with its file and
line number when the recording is loaded, never half-way through a replay.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drivers.ble.scanner import Advertisement

LOOP_GAP_S = 1.0  # between the last advertisement of one pass and the first of the next (at speed 1)


def uuid16(short: str) -> str:
    return f"0000{short.lower():0>4}-0000-1000-8000-00805f9b34fb"


def advertisement_from(record: dict[str, Any]) -> Advertisement:
    return Advertisement(
        address=str(record["address"]).upper(),
        rssi=int(record["rssi"]),
        service_data={uuid16(k) if len(k) <= 4 else k: bytes.fromhex(v) for k, v in record.get("service_data", {}).items()},
        local_name=record.get("name"),
        ts=datetime.now(UTC),
    )


def load_recording(path: Path) -> list[tuple[float, dict[str, Any]]]:
    """Every record of ``path`` with its time; ``ValueError`` naming file and line for one that is not a record."""
    out = []
    for line_no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            record = json.loads(line)
            out.append((float(record["t"]), record))
            advertisement_from(record)  # address, RSSI and hex checked now, not during the replay
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}:{line_no}: not an advertisement record: {exc}") from None
    return out


class ReplayScanner:
    """A ``Scanner`` that yields recorded advertisements ``loops`` times (``None``: until cancelled), then ends."""

    def __init__(self, records: Iterable[tuple[float, dict[str, Any]]], *, speed: float = 0.0,
                 loops: int | None = 1) -> None:
        self.records = list(records)
        self.speed = speed
        self.loops = loops
        self.replayed = 0

    async def __aenter__(self) -> ReplayScanner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def advertisements(self) -> AsyncIterator[Advertisement]:
        passes = 0
        while self.records and (self.loops is None or passes < self.loops):
            previous = 0.0 if passes == 0 else -LOOP_GAP_S
            for t, record in self.records:
                if self.speed > 0:
                    await asyncio.sleep(max(0.0, t - previous) / self.speed)
                else:
                    await asyncio.sleep(0)
                previous = t
                self.replayed += 1
                yield advertisement_from(record)
            passes += 1
