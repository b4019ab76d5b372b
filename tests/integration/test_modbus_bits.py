"""Coils and discrete inputs (FC1/FC2) end to end over real sockets and socat pseudo-terminals: the
Modbus source reads a DI module and a lift box from the simulator, one packed-bit request per poll,
follows the inputs as they change, refuses corrupt bit frames, and a meter asked for bits says so."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.modbus.driver import ModbusSource
from drivers.modbus.profile import ProfileLibrary
from drivers.modbus.transport import RtuLink, TcpLink
from edge.config.buses import ModbusRtuBusConfig, ModbusTcpBusConfig
from edge.errors import DeviceExceptionCode
from simulators.modbus.scenario import Cue, Scenario
from simulators.modbus.simulator import ModbusSimulator
from tests.helpers.sources import running
from tests.integration.modbus_support import RecordingSink, device

DI = {"profile": "generic_di8_module", "model": {"di1": 1, "di2": 1}}
LIFT = {"profile": "generic_lift_box", "model": {"floor": -1, "floor_s": 30, "dwell_s": 30}}
COILS = """model: relay board outputs
vendor: test
source: tests/integration/test_modbus_bits.py (coils read back, as the Waveshare relay boards answer FC01)
category: other
function_code: 1
points:
""" + "".join(f"  relay{i}: {{address: {i}, type: bool, kind: state}}\n" for i in range(10))




async def until(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (result := condition()):
            await asyncio.sleep(0.02)
    return result


def values(sink: RecordingSink, device_id: str) -> dict[str, float]:
    return {point: r.value for (dev, point), r in sink.latest().items() if dev == device_id}


async def test_di_module_and_coils_over_tcp(tmp_path: Path) -> None:
    (tmp_path / "relay_board.yaml").write_text(COILS, encoding="utf-8")
    sc = Scenario.model_validate({"name": "bits", "tcp": [{"id": "conv", "port": 0, "devices": [
        {"id": "di", "unit_id": 1, **DI},
        {"id": "relays", "unit_id": 2, "profile": "relay_board", "model": {"relay0": 1, "relay9": 1}},
        {"id": "meter", "unit_id": 3, "profile": "eastron_sdm120"},
    ]}]})
    async with ModbusSimulator(sc, _library(tmp_path)) as sim:
        port = sim.tcp_servers[0].port
        bus = ModbusTcpBusConfig(kind="modbus_tcp", id="b", host="127.0.0.1", port=port, profiles_dir=str(tmp_path))
        source = ModbusSource(bus, [device("di", "b", "generic_di8_module", 1, category="other", period=0.1),
                                    device("relays", "b", "relay_board", 2, category="other", period=0.1)])
        sink = RecordingSink()
        async with running(source, sink):
            await until(lambda: len(values(sink, "di")) == 8 and values(sink, "relays"))
            assert values(sink, "di") == {"di1": 1, "di2": 1, **{f"di{i}": 0 for i in range(3, 9)}}
            assert values(sink, "relays") == {f"relay{i}": (1 if i in (0, 9) else 0) for i in range(10)}
            sim.apply(Cue(at=0, device="di", action="set", point="di4", value=1))
            sim.apply(Cue(at=0, device="di", action="set", point="di1", value=0))
            await until(lambda: values(sink, "di")["di4"] == 1 and values(sink, "di")["di1"] == 0)
        # One FC2 request of 8 inputs and one FC1 request of 10 coils (2 data bytes) per poll, nothing else.
        assert set(sim.device("di").requests) == {(2, 0, 8)}
        assert set(sim.device("relays").requests) == {(1, 0, 10)}
        assert source.stats["devices"]["di"]["corrupt_frames"] == 0
        # A meter has no coils or inputs: it answers exception 0x01 (illegal function), named as such.
        link = TcpLink("127.0.0.1", port)
        try:
            with pytest.raises(DeviceExceptionCode) as refused:
                await link.read("meter", 3, 2, 0, 8, 1.0)
            assert refused.value.code == 1 and "illegal function" in str(refused.value.detail)
            assert await link.read("di", 1, 2, 2, 3, 1.0) == b"\x02"  # inputs 2..4: di4 (bit 1) is set
        finally:
            link.close()


async def test_di_module_and_lift_box_share_an_rtu_line(tmp_path: Path) -> None:
    sc = Scenario.model_validate({"name": "rtu bits", "rtu": [{"id": "l1", "link": str(tmp_path / "rtu"),
                                                                "baudrate": 9600, "devices": [
        {"id": "di", "unit_id": 1, **DI}, {"id": "lift", "unit_id": 2, **LIFT}]}]})
    async with ModbusSimulator(sc) as sim:
        # The link's own reads first: coils the DI module lacks (no FC1 image: exception 0x02), its inputs.
        link = RtuLink(str(tmp_path / "rtu"))
        try:
            with pytest.raises(DeviceExceptionCode) as refused:
                await link.read("di", 1, 1, 0, 8, 1.0)
            assert refused.value.code == 2
            assert await link.read("di", 1, 2, 0, 8, 1.0) == b"\x03"  # di1 and di2 shut
        finally:
            link.close()
        sim.device("di").requests.clear()
        bus = ModbusRtuBusConfig(kind="modbus_rtu", id="l1", port=str(tmp_path / "rtu"))
        source = ModbusSource(bus, [device("di", "l1", "generic_di8_module", 1, category="other", period=0.1),
                                    device("lift", "l1", "generic_lift_box", 2, category="other", period=0.1)])
        sink = RecordingSink()
        async with running(source, sink):
            await until(lambda: len(values(sink, "di")) == 8 and len(values(sink, "lift")) == 6)
            assert values(sink, "lift")["floor"] == -1  # B1: a signed register
            assert values(sink, "di")["di2"] == 1
            # Corrupt answers (bad CRC) to the DI module: refused and counted, never readings.
            sim.set_behaviour("di", "corrupt")
            await until(lambda: source.stats["devices"]["di"]["corrupt_frames"] >= 2)
            sim.apply(Cue(at=0, device="di", action="set", point="di2", value=0))
            seen = source.stats["devices"]["di"]["corrupt_frames"]
            await until(lambda: source.stats["devices"]["di"]["corrupt_frames"] >= seen + 3)
            assert values(sink, "di")["di2"] == 1  # the change behind the corrupt frames never arrived
            sim.set_behaviour("di", "normal")
            await until(lambda: values(sink, "di")["di2"] == 0)
            assert source.stats["devices"]["lift"]["failed"] == 0  # the other device was never held up
        assert set(sim.device("lift").requests) == {(3, 0, 6)}


def _library(directory: Path) -> ProfileLibrary:
    return ProfileLibrary([directory])
