"""End to end through a real in-process gateway (SQLite store, rules, alarms): a DL/T 645 meter and a
CJ/T 188 water and gas meter on socat pseudo-terminals, and a fire panel's GB/T 26875.3 transmission
device over real TCP. Readings are stored; the fire alarm is raised once with the component's address
and description, and cleared once by the panel's reset; a valve fault on the water meter becomes an alarm."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.cjt188.codec import scan_frame as cjt188_scan
from drivers.cjt188.profile import load_profile as cjt188_profile
from drivers.dlt645.codec import scan_frame as dlt645_scan
from drivers.dlt645.profile import load_profile as dlt645_profile
from drivers.gb26875 import codec
from drivers.gb26875.source import Gb26875Source
from edge.app import Gateway
from edge.transitions import OpenAlarm
from simulators.cjt188.meter import SimMeter as WaterMeter
from simulators.dlt645.line import MeterLineServer
from simulators.dlt645.meter import SimMeter as PowerMeter
from simulators.gb26875 import story
from simulators.gb26875.device import SimUitd
from tests.helpers.config import write_estate
from tests.helpers.sql import sql_rows

UITD = 0x1D6DD53C10AC


def _estate(tmp: Path) -> tuple[Path, Path]:
    where = {"building": "3栋"}
    devices: list[dict[str, Any]] = [
        {"id": "EM-301", "name": "3栋301电表", "bus": "meters", "category": "electricity", "profile": "generic_household",
         "location": where, "poll_interval_s": 0.5, "options": {"address": "665544332211"}},
        {"id": "WM-301", "name": "3栋301水表", "bus": "water", "category": "water", "profile": "generic_water",
         "location": where, "poll_interval_s": 0.5, "options": {"address": "00000000000012"}},
        {"id": "GM-301", "name": "3栋301燃气表", "bus": "water", "category": "gas", "profile": "generic_gas",
         "location": where, "poll_interval_s": 0.5, "options": {"address": "00000000000030"}},
        {"id": "UITD-1", "name": "消防控制室传输装置", "bus": "fire", "category": "other", "location": where,
         "options": {"address": UITD}},
        {"id": "HP-1", "name": "3栋消火栓压力（主机）", "bus": "fire", "category": "fire_pressure", "location": where,
         "options": {"uitd": "UITD-1", "component": "1-5001"}},
    ]
    buses = [
        {"kind": "dlt645", "id": "meters", "port": str(tmp / "dlt645"), "baudrate": 9600},
        {"kind": "cjt188", "id": "water", "port": str(tmp / "cjt188"), "baudrate": 9600},
        {"kind": "gb26875", "id": "fire", "port": 0, "idle_timeout_s": 30},
    ]
    return write_estate(tmp, platform_url="https://127.0.0.1:9", ca=None,
                        extra={"platform": {"enabled": False}, "buses": buses, "devices": devices})


async def _until(condition: Callable[[], Any], timeout: float = 20.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            result = await condition()
            if result:
                return result
            await asyncio.sleep(0.05)


async def test_meters_and_fire_panel_through_the_gateway(tmp_path: Path) -> None:
    config, secrets = _estate(tmp_path)
    power = MeterLineServer(str(tmp_path / "dlt645"), [PowerMeter("665544332211", dlt645_profile("generic_household"))],
                            dlt645_scan, baudrate=9600)
    water_meter = WaterMeter("00000000000012", cjt188_profile("generic_water"), valve=2)
    water = MeterLineServer(str(tmp_path / "cjt188"),
                            [water_meter, WaterMeter("00000000000030", cjt188_profile("generic_gas"))],
                            cjt188_scan, baudrate=9600)
    await power.start()
    await water.start()
    gateway = Gateway(config, secrets)
    task = asyncio.create_task(gateway.run(install_signals=False))
    try:
        async def fire_source() -> Gb26875Source | None:
            if task.done():
                task.result()
            statuses = gateway.supervisor.sources if gateway.supervisor else {}
            source = statuses.get("bus:fire")
            found = source.source if source is not None else None
            return found if isinstance(found, Gb26875Source) and found.port else None

        port = (await _until(fire_source)).port
        store = gateway.store
        assert store is not None

        async def stored(device: str, point: str) -> list[tuple]:
            return await sql_rows(store, "SELECT value, unit FROM readings WHERE device_id=? AND point=?", (device, point))

        async def alarms(code: str) -> list[OpenAlarm]:
            return [a for a in await store.open_alarms() if a.code == code]

        async with SimUitd("127.0.0.1", port, UITD) as panel:
            smoke = story.component(story.SMOKE, story.SMOKE_DETECTOR, story.NORMAL | story.FIRE)
            assert await panel.send([story.pressure_kpa(350.0)]) == codec.CONFIRM
            assert await panel.send([smoke]) == codec.CONFIRM
            fire = (await _until(lambda: alarms("fire.alarm")))[0]
            assert fire.data["component"] == "UITD-1/1-2017" and fire.data["part_address"] == 2017
            assert fire.data["description"] == "3栋12层 感烟探测器" and fire.severity == "critical"
            assert "3栋12层 感烟探测器" in fire.message and fire.device_id == "UITD-1"
            assert await panel.send([smoke]) == codec.CONFIRM  # the panel repeats itself: still one alarm
            assert await panel.send([story.system(story.NORMAL | story.RESET)]) == codec.CONFIRM
            await _until(lambda: _not(alarms("fire.alarm")))
        log = await sql_rows(store, "SELECT state FROM alarm_log WHERE code='fire.alarm' ORDER BY id")
        assert [r[0] for r in log] == ["raised", "cleared"]

        pressure = await _until(lambda: stored("HP-1", "pressure"))
        assert pressure[0][0] == pytest.approx(0.35) and pressure[0][1] == "MPa"
        energy = await _until(lambda: stored("EM-301", "energy_import"))
        assert abs(energy[0][0] - 12345.67) < 0.05 and energy[0][1] == "kWh"
        assert await _until(lambda: stored("WM-301", "volume"))
        gas = await _until(lambda: stored("GM-301", "volume"))
        assert gas[0][1] == "m³"
        valve = (await _until(lambda: alarms("meter.valve_abnormal")))[0]
        assert valve.device_id == "WM-301" and "阀门异常" in valve.message
        water_meter.valve = 0
        await _until(lambda: _not(alarms("meter.valve_abnormal")))
    finally:
        gateway.request_stop()
        await asyncio.wait_for(task, 30)
        await power.stop()
        await water.stop()


async def _not(awaitable: Any) -> bool:
    return not await awaitable
