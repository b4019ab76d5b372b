"""State inputs end to end through a real in-process gateway (SQLite store, rules, alarms, uplink to the
platform simulator over TLS): an 8-channel DI module read with FC2 over real TCP and a lift box on a
socat pseudo-terminal, both served by the Modbus simulator. A fire door left open raises
``fire.door_open`` once after its minimum open time and clears once; a door opened briefly raises
nothing; water ingress and a breaker trip raise and clear; a lift fault carries its code and floor in
the alarm's data and message; a trapped passenger raises ``elevator.trapped``; readings and alarms
reach the platform."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from edge.app import Gateway
from simulators.modbus.scenario import Cue, Scenario
from simulators.modbus.simulator import ModbusSimulator
from tests.helpers.config import write_estate
from tests.helpers.platform import PlatformSim
from tests.helpers.sql import sql_rows

DOOR_OPEN_MIN_S = 1.0
LIFT_NAMES = {0: "无故障", 5: "门锁回路故障", 2: "冲顶"}


def _estate(tmp: Path, platform: PlatformSim, tcp_port: int) -> tuple[Path, Path]:
    where = {"building": "3栋", "unit": "1单元"}
    di_states = {
        # Normally closed door contacts: 1 = shut, 0 = open.
        "di1": {"alarm": "fire.door_open", "active": [0], "min_duration_s": DOOR_OPEN_MIN_S,
                "names": {0: "开启", 1: "关闭"}, "label": "3栋1单元 1层防火门"},
        "di2": {"alarm": "fire.door_open", "active": [0], "min_duration_s": DOOR_OPEN_MIN_S,
                "names": {0: "开启", 1: "关闭"}, "label": "3栋1单元 B1层防火门"},
        "di3": {"alarm": "fire.hydrant_cabinet_open", "active": [1], "names": {0: "关闭", 1: "开启"},
                "label": "3栋1单元 1层消火栓箱门"},
        "di4": {"alarm": "water.ingress", "active": [1], "severity": "critical", "names": {0: "正常", 1: "进水"},
                "label": "3栋 B1 配电房 水浸"},
        "di5": {"alarm": "power.breaker_trip", "active": [1], "severity": "critical", "names": {0: "合闸", 1: "跳闸"},
                "label": "3栋 进线断路器"},
    }
    lift_states = {
        "fault_code": {"alarm": "elevator.fault", "inactive": [0], "severity": "critical", "names": LIFT_NAMES,
                       "context": ["fault_code", "floor", "direction", "door_state"], "label": "3栋1号电梯"},
        "trapped": {"alarm": "elevator.trapped", "active": [1], "severity": "critical", "names": {0: "无", 1: "困人"},
                    "context": ["floor"], "label": "3栋1号电梯"},
    }
    devices: list[dict[str, Any]] = [
        {"id": "B3-DI-01", "name": "3栋1单元 开关量模块", "bus": "b3-di", "category": "other",
         "profile": "generic_di8_module", "unit_id": 1, "location": where, "poll_interval_s": 0.1, "timeout_s": 0.5,
         "states": di_states},
        {"id": "B3-LIFT-01", "name": "3栋1号电梯", "bus": "b3-lift", "category": "other",
         "profile": "generic_lift_box", "unit_id": 1, "location": where, "poll_interval_s": 0.1, "timeout_s": 0.5,
         "states": lift_states},
    ]
    buses = [
        {"kind": "modbus_tcp", "id": "b3-di", "host": "127.0.0.1", "port": tcp_port},
        {"kind": "modbus_rtu", "id": "b3-lift", "port": str(tmp / "lift-rs485"), "baudrate": 9600},
    ]
    return write_estate(tmp, platform_url=platform.url, ca=platform.ca, extra={"buses": buses, "devices": devices})


def _scenario(tmp: Path) -> Scenario:
    return Scenario.model_validate({
        "name": "state inputs",
        "tcp": [{"id": "b3-converter", "port": 0, "devices": [
            {"id": "B3-DI-01", "unit_id": 1, "profile": "generic_di8_module", "model": {"di1": 1, "di2": 1}}]}],
        "rtu": [{"id": "lift", "link": str(tmp / "lift-rs485"), "baudrate": 9600, "devices": [
            {"id": "B3-LIFT-01", "unit_id": 1, "profile": "generic_lift_box",
             "model": {"floor": 3, "lowest": -1, "highest": 18, "floor_s": 0.3, "dwell_s": 0.3}}]}],
    })


async def _until(condition: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (result := await condition()):
            await asyncio.sleep(0.05)
    return result


async def test_contacts_and_lift_raise_and_clear_through_the_gateway(tmp_path: Path, platform_sim: PlatformSim) -> None:
    async with ModbusSimulator(_scenario(tmp_path)) as sim:
        config, secrets = _estate(tmp_path, platform_sim, sim.tcp_servers[0].port)
        gateway = Gateway(config, secrets)
        task = asyncio.create_task(gateway.run(install_signals=False))

        def cue(device: str, point: str, value: float) -> None:
            sim.apply(Cue(at=0, device=device, action="set", point=point, value=value))

        async def log(code: str) -> list[dict[str, Any]]:
            if task.done():
                task.result()
            store = gateway.store
            if store is None:
                return []
            rows = await sql_rows(store, "SELECT state, message, data, severity FROM alarm_log WHERE code=? ORDER BY ts_us, id",
                                    (code,))
            return [{"state": s, "message": m, "data": json.loads(d), "severity": sev} for s, m, d, sev in rows]

        def states(code: str, steps: int) -> Callable[[], Awaitable[list[dict[str, Any]] | None]]:
            async def check() -> list[dict[str, Any]] | None:
                got = await log(code)
                return got if len(got) >= steps else None
            return check

        async def stored(device: str, point: str) -> list[float]:
            store = gateway.store
            if store is None:
                return []
            rows = await sql_rows(store, "SELECT value FROM readings WHERE device_id=? AND point=? ORDER BY ts_us",
                                    (device, point))
            return [r[0] for r in rows]

        try:
            # Everything polled once and normal: no alarm of any kind.
            await _until(lambda: stored("B3-DI-01", "di1"))
            await _until(lambda: stored("B3-LIFT-01", "floor"))
            assert await gateway.store.open_alarms() == []  # type: ignore[union-attr]

            # A door opened for a moment (shorter than the minimum) raises nothing ...
            polls = len(await stored("B3-DI-01", "di2"))
            cue("B3-DI-01", "di2", 0)
            await _until(lambda: _more(stored("B3-DI-01", "di2"), polls + 2))
            cue("B3-DI-01", "di2", 1)
            # ... while one left open raises once after the minimum, and clears once when shut.
            cue("B3-DI-01", "di1", 0)
            raised = (await _until(states("fire.door_open", 1)))[0]
            assert raised["state"] == "raised" and raised["data"]["held_s"] >= DOOR_OPEN_MIN_S
            assert raised["message"].startswith("3栋1单元 1层防火门：开启（已持续 ")
            polls = len(await stored("B3-DI-01", "di1"))
            await _until(lambda: _more(stored("B3-DI-01", "di1"), polls + 5))  # still open: no second alarm
            assert len(await log("fire.door_open")) == 1
            cue("B3-DI-01", "di1", 1)
            steps = await _until(states("fire.door_open", 2))
            assert [s["state"] for s in steps] == ["raised", "cleared"] and "关闭" in steps[1]["message"]

            # Hydrant cabinet, water ingress and the breaker: at once, with their severities.
            cue("B3-DI-01", "di3", 1)
            cue("B3-DI-01", "di4", 1)
            cue("B3-DI-01", "di5", 1)
            water = (await _until(states("water.ingress", 1)))[0]
            assert water["severity"] == "critical" and water["message"] == "3栋 B1 配电房 水浸：进水"
            trip = (await _until(states("power.breaker_trip", 1)))[0]
            assert trip["message"] == "3栋 进线断路器：跳闸"
            assert (await _until(states("fire.hydrant_cabinet_open", 1)))[0]["data"]["value"] == 1
            for point in ("di3", "di4", "di5"):
                cue("B3-DI-01", point, 0)
            for code in ("fire.hydrant_cabinet_open", "water.ingress", "power.breaker_trip"):
                assert [s["state"] for s in await _until(states(code, 2))] == ["raised", "cleared"]

            # The lift stops at floor 12 with fault 5: the code and the floor are in data and message.
            cue("B3-LIFT-01", "floor", 12)
            cue("B3-LIFT-01", "fault_code", 5)
            fault = (await _until(states("elevator.fault", 1)))[0]
            assert fault["data"]["value"] == 5 and fault["data"]["fault_code"] == 5 and fault["data"]["floor"] == 12
            assert fault["data"]["state"] == "门锁回路故障" and fault["severity"] == "critical"
            assert fault["message"] == "3栋1号电梯：门锁回路故障（故障代码 5，楼层 12，停止，关门）"
            cue("B3-LIFT-01", "fault_code", 0)  # recovered: it runs again
            assert [s["state"] for s in await _until(states("elevator.fault", 2))] == ["raised", "cleared"]
            await _until(lambda: _changes(stored("B3-LIFT-01", "floor"), 12))

            # A passenger trapped in the basement.
            cue("B3-LIFT-01", "floor", -1)
            cue("B3-LIFT-01", "trapped", 1)
            trapped = (await _until(states("elevator.trapped", 1)))[0]
            assert trapped["data"]["floor"] == -1 and "楼层 -1" in trapped["message"]
            cue("B3-LIFT-01", "trapped", 0)
            assert [s["state"] for s in await _until(states("elevator.trapped", 2))] == ["raised", "cleared"]
            assert await gateway.store.open_alarms() == []  # type: ignore[union-attr]

            # The platform received the readings and every alarm step.
            def at_platform() -> Awaitable[bool]:
                async def check() -> bool:
                    alarms = await asyncio.to_thread(platform_sim.records, "alarm")
                    return len(alarms) >= 12
                return check()

            await _until(at_platform, timeout=30)
            alarms = platform_sim.records("alarm")
            codes = sorted({a["code"] for a in alarms})
            assert codes == ["elevator.fault", "elevator.trapped", "fire.door_open", "fire.hydrant_cabinet_open",
                             "power.breaker_trip", "water.ingress"]
            door = [a for a in alarms if a["code"] == "fire.door_open"]
            assert len(door) == 2  # raised and cleared, once each (the brief opening raised nothing)
            # Telemetry is the lowest lane: wait until the basement floor reading is up too.
            def basement_at_platform() -> Awaitable[bool]:
                async def check() -> bool:
                    rows = await asyncio.to_thread(platform_sim.readings)
                    return any(r["point"] == "floor" and r["value"] == -1.0 for r in rows)
                return check()

            await _until(basement_at_platform, timeout=30)
            readings = platform_sim.readings()
            points = {(r["device_id"], r["point"]) for r in readings}
            assert {("B3-DI-01", "di1"), ("B3-DI-01", "di4"), ("B3-LIFT-01", "floor"),
                    ("B3-LIFT-01", "fault_code")} <= points
            assert {r["value"] for r in readings if r["point"] == "di1"} == {0.0, 1.0}
            assert -1.0 in {r["value"] for r in readings if r["point"] == "floor"}
        finally:
            gateway.request_stop()
            await asyncio.wait_for(task, 30)


async def _more(values: Awaitable[list[float]], n: int) -> bool:
    return len(await values) >= n


async def _changes(values: Awaitable[list[float]], after: float) -> bool:
    """The lift left floor ``after`` (it moves again once the fault is cleared)."""
    got = await values
    return bool(got) and got[-1] != after
