"""The scanner interface: one per adapter, yielding advertisements; bleak behind it on a real gateway.

Why an interface: the radio is the one part of this driver that cannot run in a test or CI box, so
the source consumes ``Scanner.advertisements()`` and never bleak directly. ``BleakPassiveScanner``
is the real one (BlueZ on the gateway); ``simulators.ble.ReplayScanner`` replays recorded
advertisement bytes through the same interface.

Passive scanning on BlueZ goes through its advertisement monitor, which needs "or patterns": here
the service-data UUIDs of the formats the codec reads (BTHome 0xFCD2, environmental 0x181A), so
the adapter wakes the gateway only for those.

Backpressure: the bleak callback puts into a bounded queue (``max_queue``); when the source falls
behind, the oldest advertisements are dropped and counted (a sensor repeats its advertisement every
few seconds, so the newest one carries everything).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from bleak import BleakScanner
from bleak.args.bluez import BlueZScannerArgs, OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

PATTERNS = [
    OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, b"\xd2\xfc"),  # BTHome v2
    OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, b"\x1a\x18"),  # environmental (pvvx / ATC1441)
]


@dataclass(frozen=True, slots=True)
class Advertisement:
    """One received advertisement: who sent it, how strong, and its service data by 128-bit UUID."""

    address: str  # upper-case AA:BB:CC:DD:EE:FF
    rssi: int
    service_data: dict[str, bytes] = field(default_factory=dict)
    local_name: str | None = None
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))


class ScannerUnavailable(OSError):
    """The Bluetooth stack itself is missing (no BlueZ / D-Bus), as opposed to a failing adapter."""


class Scanner(Protocol):
    """One adapter's stream of advertisements; an async context manager (start / stop scanning)."""

    async def __aenter__(self) -> Scanner: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def advertisements(self) -> AsyncIterator[Advertisement]: ...


class BleakPassiveScanner:
    """``bleak.BleakScanner`` on one adapter, passive by default. Raises bleak's errors on start (no adapter)."""

    def __init__(self, adapter: str = "hci0", *, mode: Literal["passive", "active"] = "passive",
                 max_queue: int = 2000) -> None:
        self.adapter = adapter
        self.mode = mode
        self.dropped = 0
        self._queue: deque[Advertisement] = deque(maxlen=max_queue)
        self._wake = asyncio.Event()
        bluez: BlueZScannerArgs = {"adapter": adapter}
        if mode == "passive":
            bluez["or_patterns"] = list(PATTERNS)
        self._scanner = BleakScanner(self._on_advertisement, scanning_mode=mode, bluez=bluez)

    def _on_advertisement(self, device: BLEDevice, data: AdvertisementData) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(Advertisement(device.address.upper(), data.rssi, dict(data.service_data), data.local_name))
        self._wake.set()

    async def __aenter__(self) -> BleakPassiveScanner:
        try:
            await self._scanner.start()
        except (FileNotFoundError, ConnectionRefusedError) as exc:  # no system D-Bus socket, or nobody on it
            raise ScannerUnavailable(f"BlueZ is not reachable over D-Bus (is bluetoothd running?): {exc}") from exc
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._scanner.stop()

    async def advertisements(self) -> AsyncIterator[Advertisement]:
        while True:
            while self._queue:
                yield self._queue.popleft()
            self._wake.clear()
            await self._wake.wait()
