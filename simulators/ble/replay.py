"""Replays recorded advertisements through the driver's ``Scanner`` interface (the radio cannot run in tests).

A recording is JSON lines, one advertisement each::

    {"t": 1.5, "address": "A4:C1:38:12:34:56", "rssi": -67, "name": "ATC_123456",
     "service_data": {"181a": "<hex>"}}

``t`` is seconds from the start; ``speed`` scales the waits (0: as fast as the consumer takes
them, which is what tests use: they wait for events, not time). Service data keys are 16-bit
UUIDs in hex, expanded to the 128-bit form bleak reports.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drivers.ble.scanner import Advertisement

RECORDINGS = Path(__file__).resolve().parent / "recordings"


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
    out = []
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            record = json.loads(line)
            out.append((float(record["t"]), record))
        except (ValueError, KeyError) as exc:
            raise ValueError(f"{path}:{line_no}: not an advertisement record: {exc}") from None
    return out


class ReplayScanner:
    """A ``Scanner`` that yields recorded advertisements (optionally looping), then ends."""

    def __init__(self, records: Iterable[tuple[float, dict[str, Any]]], *, speed: float = 0.0, loops: int = 1) -> None:
        self.records = list(records)
        self.speed = speed
        self.loops = loops
        self.replayed = 0

    async def __aenter__(self) -> ReplayScanner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def advertisements(self) -> AsyncIterator[Advertisement]:
        for _ in range(self.loops):
            previous = 0.0
            for t, record in self.records:
                if self.speed > 0:
                    await asyncio.sleep(max(0.0, t - previous) / self.speed)
                else:
                    await asyncio.sleep(0)
                previous = t
                self.replayed += 1
                yield advertisement_from(record)
