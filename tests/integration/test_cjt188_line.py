"""CJ/T 188 water, gas and heat meters on a real socat pseudo-terminal against the simulator (wire timing
at 2,400 baud 8E1 as a real M-Bus converter); the sink records what the source hands to the pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from drivers.cjt188.codec import scan_frame
from drivers.cjt188.profile import load_profile
from drivers.cjt188.source import Cjt188Source
from edge.config.buses import Cjt188BusConfig
from edge.errors import ConfigError
from simulators.cjt188.meter import SimMeter
from simulators.dlt645.line import MeterLineServer
from tests.integration.modbus_support import RecordingSink, device

BAUD = 2400


def meter_device(device_id: str, address: str, profile: str, category: str = "water", **kw: Any) -> Any:
    kw.setdefault("period", 0.5)
    return device(device_id, "w1", profile, 0, category=category, options={"address": address}, **kw)


def bus(tmp_path: Path, **kw: Any) -> Cjt188BusConfig:
    return Cjt188BusConfig(kind="cjt188", id="w1", port=str(tmp_path / "cjt188"), baudrate=BAUD, **kw)


@asynccontextmanager
async def running(tmp_path: Path, meters: list[SimMeter], source: Cjt188Source,
                  sink: RecordingSink) -> AsyncIterator[MeterLineServer]:
    server = MeterLineServer(str(tmp_path / "cjt188"), meters, scan_frame, baudrate=BAUD, parity="E")
    await server.start()
    task = asyncio.create_task(source.run(sink))
    try:
        yield server
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await server.stop()


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def sim(address: str, profile: str, **kw: Any) -> SimMeter:
    return SimMeter(address, load_profile(profile), **kw)


async def test_water_gas_and_heat_meters_report_in_canonical_units(tmp_path: Path) -> None:
    meters = [sim("00000000000012", "generic_water_901f"), sim("00000000000030", "generic_gas"),
              sim("00000000000020", "generic_heat")]
    # At 2,400 baud the three transactions take about 0.85 s of wire time: a 1.5 s period fits.
    source = Cjt188Source(bus(tmp_path), [
        meter_device("w", "12", "generic_water_901f", period=1.5), meter_device("g", "30", "generic_gas", "gas", period=1.5),
        meter_device("h", "20", "generic_heat", "heat", period=1.5),
    ])
    sink = RecordingSink()
    async with running(tmp_path, meters, source, sink) as server:
        await until(lambda: all(sink.of(d, "volume") for d in "wgh") and len(sink.of("w", "volume")) >= 2)
    latest = sink.latest()
    assert latest[("w", "volume")].value == pytest.approx(321.09, abs=0.02) and latest[("w", "volume")].unit == "m³"
    assert latest[("g", "volume_settlement")].value == pytest.approx(321.09)
    assert latest[("h", "heat_energy")].unit == "kWh" and latest[("h", "heat_energy")].value == pytest.approx(1234.5, abs=0.05)
    assert latest[("h", "heat_power")].value == pytest.approx(5400.0) and latest[("h", "heat_power")].unit == "W"
    assert latest[("h", "supply_temperature")].value == pytest.approx(55.2)
    assert latest[("w", "valve")].value == 0 and latest[("w", "battery_low")].value == 0
    assert not sink.events_seen and all(s.online for s in sink.statuses)
    # Every transaction the line counted reached the meter, except perhaps the one the stop cut off
    # after it was counted and before its bytes were read on the far end of the pty.
    assert 0 <= source.stats["links"][0]["transactions"] - server.stats["requests"] <= 1


async def test_valve_and_battery_states_raise_and_clear_once(tmp_path: Path) -> None:
    meter = sim("00000000000012", "generic_water", valve=2, low_battery=True)
    source = Cjt188Source(bus(tmp_path), [meter_device("w", "12", "generic_water", period=0.3)])
    sink = RecordingSink()
    async with running(tmp_path, [meter], source, sink):
        await until(lambda: len(sink.of("w", "valve")) >= 2)
        meter.valve, meter.low_battery = 1, False  # closed is a state, not a fault
        await until(lambda: sink.latest()[("w", "valve")].value == 1)
        await until(lambda: len(sink.of("w", "valve")) >= 6)
    events = [(e.code, e.data["active"]) for e in sink.events_seen]
    assert events == [("cjt188.valve_abnormal", True), ("cjt188.battery_low", True),
                      ("cjt188.valve_abnormal", False), ("cjt188.battery_low", False)]
    assert sink.events_seen[0].message.endswith("阀门异常")


@pytest.mark.parametrize(("switch", "reason"), [("corrupt", "checksum"), ("truncate", "truncated")])
async def test_corrupt_replies_are_refused_and_counted(tmp_path: Path, switch: str, reason: str) -> None:
    meters = [sim("00000000000001", "generic_water", **{switch: True}), sim("00000000000002", "generic_water")]
    source = Cjt188Source(bus(tmp_path), [meter_device("bad", "1", "generic_water", timeout=0.3),
                                          meter_device("good", "2", "generic_water")])
    sink = RecordingSink()
    async with running(tmp_path, meters, source, sink):
        await until(lambda: "cjt188.corrupt_frame" in sink.event_codes("bad") and len(sink.of("good", "volume")) >= 2)
    assert not sink.of("bad", "volume")
    assert next(e for e in sink.events_seen if e.code == "cjt188.corrupt_frame").data["reason"] == reason
    assert source.stats["devices"]["bad"]["corrupt_frames"] >= 1 and source.stats["devices"]["good"]["failed"] == 0


async def test_wrong_di_order_is_a_silent_meter_not_a_reading(tmp_path: Path) -> None:
    # The meter wants 90 1F; a profile that sends 1F 90 gets silence (as from a real meter), so the meter
    # goes offline rather than being misread.
    source = Cjt188Source(bus(tmp_path), [meter_device("w", "12", "generic_water", timeout=0.2, retries=0)])
    sink = RecordingSink()
    async with running(tmp_path, [sim("00000000000012", "generic_water_901f")], source, sink):
        await until(lambda: sum(1 for s in sink.statuses if not s.online) >= 3)
    assert not sink.readings_seen and source.stats["devices"]["w"]["online"] is False


def test_config_problems_name_the_device(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Cjt188Source(bus(tmp_path), [
            meter_device("a", "123456789012345", "generic_water"),
            device("b", "w1", "generic_water", 0, options={"address": "1", "valve": 1}),
        ])
    text = "\n".join(info.value.problems)
    assert "device a: options.address" in text and "device b: unknown options ['valve']" in text
