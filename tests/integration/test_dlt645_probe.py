"""The panel's "test device" and the read-address command on real pseudo-terminals, with and without a
running source (the probe borrows the running line, since the port is opened exclusively)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from drivers.cjt188.codec import scan_frame as cjt188_scan
from drivers.cjt188.profile import load_profile as cjt188_profile
from drivers.dlt645.codec import scan_frame as dlt645_scan
from drivers.dlt645.probe import probe_meter_device, read_meter_address
from drivers.dlt645.profile import load_profile as dlt645_profile
from drivers.dlt645.source import Dlt645Source
from edge.config.buses import Cjt188BusConfig, Dlt645BusConfig
from edge.errors import DeviceProtocolError, DeviceTimeout
from simulators.cjt188.meter import SimMeter as WaterMeter
from simulators.dlt645.line import MeterLineServer
from simulators.dlt645.meter import SimMeter as PowerMeter
from tests.integration.modbus_support import RecordingSink, device


def dlt_bus(tmp_path: Path) -> Dlt645BusConfig:
    return Dlt645BusConfig(kind="dlt645", id="m1", port=str(tmp_path / "line"), baudrate=9600)


def household_line(tmp_path: Path) -> MeterLineServer:
    # socat ends a pty pair once its gateway end is closed, so each phase gets a fresh line.
    return MeterLineServer(str(tmp_path / "line"), [PowerMeter("665544332211", dlt645_profile("generic_household"))],
                           dlt645_scan, baudrate=9600)


async def test_probe_shows_frames_and_values_alone_and_beside_the_running_source(tmp_path: Path) -> None:
    meter = device("EM", "m1", "generic_household", 0, options={"address": "665544332211"})
    server = household_line(tmp_path)
    await server.start()
    try:
        alone = await probe_meter_device(dlt_bus(tmp_path), meter)
        assert alone.ok and len(alone.frames) == 2 * 7
        assert alone.frames[0].direction == "tx" and alone.frames[0].hex.startswith("fe fe fe fe 68 11 22 33 44 55 66 68 11")
        assert {v.point for v in alone.values} >= {"energy_import", "voltage"}
    finally:
        await server.stop()
    server = household_line(tmp_path)
    await server.start()
    try:
        source = Dlt645Source(dlt_bus(tmp_path), [meter])
        sink = RecordingSink()
        task = asyncio.create_task(source.run(sink))
        try:
            async with asyncio.timeout(10):
                while source.live_link() is None:
                    await asyncio.sleep(0.02)
            borrowed = await probe_meter_device(dlt_bus(tmp_path), meter, [source])
            assert borrowed.ok and borrowed.values
            assert source.live_link() is not None  # the probe left the running line open
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        await server.stop()
    server = household_line(tmp_path)
    await server.start()
    try:
        silent = await probe_meter_device(dlt_bus(tmp_path), device("X", "m1", "generic_household", 0,
                                                                     options={"address": "1"}, timeout=0.2))
        assert not silent.ok and "no answer" in (silent.error or "") and [f.direction for f in silent.frames] == ["tx"]
    finally:
        await server.stop()


async def test_read_address_of_the_one_meter_on_the_line(tmp_path: Path) -> None:
    one = MeterLineServer(str(tmp_path / "line"), [PowerMeter("000012345678", dlt645_profile("generic_household"))],
                          dlt645_scan, baudrate=9600)
    await one.start()
    try:
        assert await read_meter_address(dlt_bus(tmp_path)) == "000012345678"
    finally:
        await one.stop()
    water = Cjt188BusConfig(kind="cjt188", id="w1", port=str(tmp_path / "water"), baudrate=9600)
    server = MeterLineServer(str(tmp_path / "water"), [WaterMeter("20261127000042", cjt188_profile("generic_water"))],
                             cjt188_scan, baudrate=9600)
    await server.start()
    try:
        assert await read_meter_address(water) == "20261127000042"
    finally:
        await server.stop()


async def test_read_address_with_two_meters_is_a_collision_not_an_address(tmp_path: Path) -> None:
    meters = [PowerMeter("000000000001", dlt645_profile("generic_household")),
              PowerMeter("000000000002", dlt645_profile("generic_household"))]
    server = MeterLineServer(str(tmp_path / "line"), meters, dlt645_scan, baudrate=9600)
    await server.start()
    try:
        with pytest.raises((DeviceProtocolError, DeviceTimeout)):
            await read_meter_address(dlt_bus(tmp_path), timeout=0.3)
        assert server.stats["collisions"] == 1
    finally:
        await server.stop()
