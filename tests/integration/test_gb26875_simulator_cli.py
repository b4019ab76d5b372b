"""``python -m simulators.gb26875`` runs alone: it connects to a listening gateway and plays the fire-panel story."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from drivers.gb26875.source import Gb26875Source
from edge.config.buses import Gb26875BusConfig
from edge.config.devices import DeviceConfig
from tests.helpers.sink import RecordingSink
from tests.integration.test_dlt645_simulator_cli import _start, _stop

REPO = Path(__file__).resolve().parents[2]


async def test_gb26875_simulator_cli_plays_the_story() -> None:
    bus = Gb26875BusConfig(kind="gb26875", id="fire", port=0)
    source = Gb26875Source(bus, [DeviceConfig(id="UITD", name="u", bus="fire", category="other",
                                              location={"building": "1"}, options={"address": "0x1d6dd53c10ac"})])
    sink = RecordingSink()
    task = asyncio.create_task(source.run(sink))
    try:
        async with asyncio.timeout(5):
            await source.listening.wait()
        proc, _ = await _start("simulators.gb26875", "--port", str(source.port), "--speed", "20")
        try:
            async with asyncio.timeout(20):
                while "gb26875.component_state" not in sink.event_codes():
                    await asyncio.sleep(0.02)
        finally:
            assert await _stop(proc) == 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    fire = [e.data["active"] for e in sink.events_seen if e.code == "gb26875.fire"]
    assert fire == [True, False] and source.stats["denied"] == 0
