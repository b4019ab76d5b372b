"""The meter simulators run alone: ``python -m simulators.dlt645`` / ``python -m simulators.cjt188`` serve meters
on a socat pty that the drivers read."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from drivers.cjt188.source import Cjt188Source
from drivers.dlt645.source import Dlt645Source
from edge.config.buses import Cjt188BusConfig, Dlt645BusConfig
from edge.config.devices import DeviceConfig
from tests.helpers.sink import RecordingSink

REPO = Path(__file__).resolve().parents[2]


async def _start(*args: str) -> tuple[asyncio.subprocess.Process, list[str]]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", *args, cwd=REPO,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    lines: list[str] = []
    assert proc.stdout is not None
    async with asyncio.timeout(15):
        while (line := (await proc.stdout.readline()).decode()) and line.strip() != "READY":
            lines.append(line.strip())
    assert proc.returncode is None, (await proc.stderr.read()).decode() if proc.stderr else ""
    return proc, lines


async def _stop(proc: asyncio.subprocess.Process) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(10):
        return await proc.wait()


async def _poll_until(source: object, sink: RecordingSink, device_id: str, point: str) -> None:
    task = asyncio.create_task(source.run(sink))  # type: ignore[attr-defined]
    try:
        async with asyncio.timeout(15):
            while not sink.of(device_id, point):
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def _meter(device_id: str, bus: str, profile: str, address: str, category: str = "electricity") -> DeviceConfig:
    return DeviceConfig(id=device_id, name=device_id, bus=bus, profile=profile, category=category,  # type: ignore[arg-type]
                        location={"building": "1"}, poll_interval_s=0.5, timeout_s=0.5, options={"address": address})


async def test_dlt645_simulator_cli(tmp_path: Path) -> None:
    link = str(tmp_path / "dlt645")
    proc, lines = await _start("simulators.dlt645", "--link", link, "--baudrate", "9600",
                               "--meter", "665544332211:generic_household", "--meter", "000000000002",
                               "--silent", "000000000002")
    try:
        assert lines == [f"dlt645 {link} 665544332211 generic_household", f"dlt645 {link} 000000000002 generic_household"]
        sink = RecordingSink()
        source = Dlt645Source(Dlt645BusConfig(kind="dlt645", id="m", port=link, baudrate=9600),
                              [_meter("EM", "m", "generic_household", "665544332211")])
        await _poll_until(source, sink, "EM", "energy_import")
    finally:
        assert await _stop(proc) == 0


async def test_cjt188_simulator_cli(tmp_path: Path) -> None:
    link = str(tmp_path / "cjt188")
    proc, lines = await _start("simulators.cjt188", "--link", link, "--baudrate", "9600",
                               "--meter", "00000000000012:generic_water", "--valve-abnormal", "00000000000012")
    try:
        assert lines == [f"cjt188 {link} 00000000000012 generic_water"]
        sink = RecordingSink()
        source = Cjt188Source(Cjt188BusConfig(kind="cjt188", id="w", port=link, baudrate=9600),
                              [_meter("WM", "w", "generic_water", "12", "water")])
        await _poll_until(source, sink, "WM", "volume")
        assert sink.latest()[("WM", "valve")].value == 2
    finally:
        assert await _stop(proc) == 0
