"""Modbus RTU over socat pseudo-terminals against the simulator, which keeps 9,600-baud wire timing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.modbus.codec import rtu_transaction_wire_s
from drivers.modbus.driver import ModbusSource
from edge.config import EstateConfig
from edge.config.buses import ModbusRtuBusConfig
from edge.normalise import Normaliser
from edge.rules import AlarmTransition, RuleEngine, TransitionKind
from simulators.modbus.scenario import Cue, Scenario
from simulators.modbus.simulator import ModbusSimulator
from tests.helpers.waiting import LoopStalls, eventually
from tests.integration.modbus_support import RecordingSink, device, run_for, run_until

PRESSURE = {"profile": "generic_rs485_pressure", "model": {"value": 0.30, "noise": 0.0},
            "registers": {"unit_code": 1, "decimals": 1, "range_zero": 0, "range_full": 1.6}}
LEVEL = {"profile": "generic_rs485_level", "model": {"value": 3.2, "noise": 0.0},
         "registers": {"unit_code": 7, "decimals": 2, "range_zero": 0, "range_full": 5}}


def line(tmp_path: Path, devices: list[dict[str, Any]], baudrate: int = 9600) -> Scenario:
    return Scenario.model_validate(
        {"name": "rtu", "rtu": [{"id": "l1", "link": str(tmp_path / "rtu"), "baudrate": baudrate, "devices": devices}]}
    )


def rtu_bus(tmp_path: Path, **kw: Any) -> ModbusRtuBusConfig:
    return ModbusRtuBusConfig(kind="modbus_rtu", id="l1", port=str(tmp_path / "rtu"), **kw)


async def test_wire_timing_is_honoured_and_the_bus_is_kept_busy(tmp_path: Path) -> None:
    sc = line(tmp_path, [{"id": "p", "unit_id": 1, **PRESSURE}, {"id": "l", "unit_id": 2, **LEVEL}])
    async with ModbusSimulator(sc):
        # Periods far shorter than the wire allows: the bus runs flat out, late cycles are skipped.
        source = ModbusSource(rtu_bus(tmp_path), [
            device("p", "l1", "generic_rs485_pressure", 1, category="fire_pressure", period=0.02),
            device("l", "l1", "generic_rs485_level", 2, category="fire_level", period=0.02),
        ])
        sink = RecordingSink()
        seconds = 2.0
        await run_for(source, sink, seconds)
    transactions = source.stats["links"][0]["transactions"]
    limit = 1 / rtu_transaction_wire_s(11, 9600)  # both read 0x0002..0x000C: 11 registers
    assert transactions <= limit * seconds * 1.02  # never faster than the wire: the simulator keeps time
    assert transactions >= 0.6 * limit * seconds  # and the driver wastes little of it (the bench: ~96 %)
    assert source.stats["skipped_cycles"] > 0 and source.overloaded
    latest = sink.latest()
    assert latest[("p", "pressure")].value == pytest.approx(0.30, abs=1e-9)
    assert latest[("l", "level")].value == pytest.approx(3.2, abs=1e-9)


async def test_dead_device_costs_its_rtu_bus_one_timeout_per_backoff_step(tmp_path: Path) -> None:
    live = [{"id": f"p{u}", "unit_id": u, **PRESSURE} for u in (1, 2, 3)]
    sc = line(tmp_path, [*live, {"id": "dead", "unit_id": 4, **PRESSURE, "behaviour": {"mode": "offline"}}])
    timeout = 0.15
    async with ModbusSimulator(sc) as sim:
        devices = [device(f"p{u}", "l1", "generic_rs485_pressure", u, category="fire_pressure", period=0.5)
                   for u in (1, 2, 3)]
        devices.append(device("dead", "l1", "generic_rs485_pressure", 4, category="fire_pressure", period=0.5,
                              timeout=timeout, retries=1))
        source = ModbusSource(rtu_bus(tmp_path, backoff_max_s=10), devices)
        sink = RecordingSink()
        async with LoopStalls() as stalls:
            await run_for(source, sink, 4.2)
        attempts = sim.device("dead").request_count
    stats = source.stats["devices"]
    dead = stats["dead"]
    # One retry on the first failed poll only; then one attempt per poll, and per backoff step.
    assert dead["polls"] >= 4
    assert attempts == 2 + (dead["polls"] - 1)
    wire = rtu_transaction_wire_s(11, 9600)
    for u in (1, 2, 3):
        live_stats = stats[f"p{u}"]
        assert live_stats["skipped_cycles"] == 0 and live_stats["failed"] == 0
        # At worst a live device waits for the dead one's two timeouts (first polls) plus a few frames.
        assert live_stats["lag_max_s"] < 2 * timeout + 4 * wire + 0.05 + stalls.worst_s, (live_stats, stalls.worst_s)
        assert live_stats["ok"] >= 7


async def test_corrupt_crc_and_exception_codes_fail_fast_and_are_counted(tmp_path: Path) -> None:
    sc = line(tmp_path, [
        {"id": "bad", "unit_id": 1, **PRESSURE, "behaviour": {"mode": "corrupt"}},
        {"id": "exc", "unit_id": 2, **PRESSURE, "behaviour": {"mode": "exception", "code": 2}},
        {"id": "ok", "unit_id": 3, **PRESSURE},
    ])
    async with ModbusSimulator(sc):
        devices = [device(n, "l1", "generic_rs485_pressure", u, category="fire_pressure", period=0.3, timeout=1.0,
                          retries=0) for n, u in (("bad", 1), ("exc", 2), ("ok", 3))]
        source = ModbusSource(rtu_bus(tmp_path, backoff_max_s=0.3), devices)
        sink = RecordingSink()
        devices_stats = lambda: source.stats["devices"]  # noqa: E731
        async with LoopStalls() as stalls:
            await run_until(source, sink, lambda: devices_stats()["bad"]["corrupt_frames"] >= 4
                            and devices_stats()["exc"]["exception_by_code"].get(2, 0) >= 4
                            and devices_stats()["ok"]["ok"] >= 5,
                            what="four corrupt frames, four exception replies and five good polls")
    stats = source.stats
    # A bad CRC fails the transaction when the frame is complete, not after the 1 s timeout.
    assert stats["devices"]["bad"]["corrupt_frames"] >= 4
    assert stats["devices"]["bad"]["timeouts"] == 0
    assert stats["devices"]["exc"]["exception_by_code"].get(2, 0) >= 4
    assert stats["devices"]["ok"]["failed"] == 0 and stats["devices"]["ok"]["ok"] >= 5
    assert stats["devices"]["ok"]["lag_max_s"] < 0.2 + stalls.worst_s
    assert "modbus.corrupt_frame" in sink.event_codes("bad")
    assert "modbus.exception_code" in sink.event_codes("exc")


async def test_hydrant_pressure_alarm_and_sensor_fault_end_to_end(tmp_path: Path) -> None:
    sc = line(tmp_path, [{"id": "h", "unit_id": 1, **PRESSURE}, {"id": "pool", "unit_id": 2, **LEVEL}])
    devices = [
        device("h", "l1", "generic_rs485_pressure", 1, category="fire_pressure", period=0.2,
               thresholds={"pressure": {"min_duration_s": 0.6}}),
        device("pool", "l1", "generic_rs485_level", 2, category="fire_level", period=0.2),
    ]
    config = EstateConfig.model_validate({
        "estate": {"id": "e1", "name": "E", "gateway_id": "g1"},
        "platform": {"url": "https://platform.example", "client_id": "c"},
        "buses": [rtu_bus(tmp_path).model_dump()],
        "devices": [d.model_dump() for d in devices],
    })
    async with ModbusSimulator(sc) as sim:
        source = ModbusSource(config.buses[0], config.devices)  # type: ignore[arg-type]
        sink = RecordingSink()
        task = asyncio.create_task(source.run(sink))

        def alarm_transitions() -> list[AlarmTransition]:
            return RuleEngine.from_config(config).on_readings(Normaliser.from_config(config).normalise(list(sink.seen)))

        def span_s(device_id: str, point: str, matches: Callable[[float], bool]) -> float:
            stamps = [r.ts for r in sink.of(device_id, point) if matches(r.value)]
            return (stamps[-1] - stamps[0]).total_seconds() if stamps else -1.0

        await eventually(lambda: span_s("h", "pressure", lambda v: v > 0.07) >= 0 and bool(sink.of("pool", "level")),
                         what="first readings of both sensors")
        sim.apply(Cue(at=0, device="h", action="set", value=0.05))  # below the residential 0.07 MPa
        sim.apply(Cue(at=0, device="pool", action="set", value=-1.0))  # a broken loop: below the range
        await eventually(lambda: span_s("h", "pressure", lambda v: v < 0.07) >= 0.8
                         and span_s("pool", "level", lambda v: v < 0) >= 0.4,
                         what="low pressure held past its 0.6 s minimum and the broken loop read")
        sim.apply(Cue(at=0, device="h", action="set", value=0.30))
        sim.apply(Cue(at=0, device="pool", action="set", value=3.0))
        await eventually(lambda: [t.kind for t in alarm_transitions() if t.kind is TransitionKind.CLEAR] == [
                             TransitionKind.CLEAR, TransitionKind.CLEAR], what="both alarms cleared by recovered readings")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    normaliser = Normaliser.from_config(config)
    engine = RuleEngine.from_config(config)
    transitions = engine.on_readings(normaliser.normalise(sink.seen))
    by_alarm: dict[tuple[str, str], list[TransitionKind]] = {}
    for t in transitions:
        by_alarm.setdefault((t.code, t.subject), []).append(t.kind)
    # Each alarm raised once and cleared by itself once the value recovered; nothing else.
    assert by_alarm == {
        ("fire.hydrant_pressure_low", "h"): [TransitionKind.RAISE, TransitionKind.CLEAR],
        ("device.sensor_fault", "pool"): [TransitionKind.RAISE, TransitionKind.CLEAR],
    }
    low = next(t for t in transitions if t.code == "fire.hydrant_pressure_low")
    assert low.data["limit"] == 0.07 and low.data["value"] == pytest.approx(0.05)
    assert not any(t.code.startswith("fire.water_level") for t in transitions)


async def test_missing_serial_port_is_reported_not_fatal(tmp_path: Path) -> None:
    bus = ModbusRtuBusConfig(kind="modbus_rtu", id="l1", port=str(tmp_path / "no-such-tty"))
    source = ModbusSource(bus, [device("p", "l1", "generic_rs485_pressure", 1, category="fire_pressure", period=0.1)])
    sink = RecordingSink()
    took = await run_for(source, sink, 0.8)
    stats = source.stats["devices"]["p"]
    assert stats["unreachable"] >= 3 and stats["ok"] == 0
    assert sink.statuses and not any(s.online for s in sink.statuses)
    assert "no-such-tty" in (sink.statuses[0].error or "")
    assert took < 1.0


@pytest.mark.parametrize("fault", ["short", "garbage"])
async def test_short_frames_and_garbage_never_become_readings(tmp_path: Path, fault: str) -> None:
    """A reply cut off mid-frame, or noise on the line instead of a reply: refused and counted, never a reading,
    the healthy device beside it unaffected, and the faulty one back as soon as it answers properly."""
    sc = line(tmp_path, [{"id": "bad", "unit_id": 1, **PRESSURE, "behaviour": {"mode": fault}},
                         {"id": "ok", "unit_id": 3, **PRESSURE}])
    async with ModbusSimulator(sc) as sim:
        devices = [device(n, "l1", "generic_rs485_pressure", u, category="fire_pressure", period=0.3, timeout=0.4,
                          retries=0) for n, u in (("bad", 1), ("ok", 3))]
        source = ModbusSource(rtu_bus(tmp_path, backoff_max_s=0.3), devices)
        sink = RecordingSink()
        task = asyncio.create_task(source.run(sink))
        devices_stats = lambda: source.stats["devices"]  # noqa: E731
        await eventually(lambda: devices_stats()["bad"]["corrupt_frames"] + devices_stats()["bad"]["timeouts"] >= 3
                         and devices_stats()["ok"]["ok"] >= 4, what="three refused replies beside four good polls")
        faulty = dict(source.stats["devices"]["bad"])
        assert sink.of("bad", "pressure") == [], "a broken frame became a reading"
        sim.set_behaviour("bad", "normal")
        await eventually(lambda: bool(sink.of("bad", "pressure")) and devices_stats()["ok"]["ok"] >= 6,
                         what="the faulty device answering again")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert faulty["corrupt_frames"] + faulty["timeouts"] >= 3 and faulty["ok"] == 0
    assert source.stats["devices"]["ok"]["failed"] == 0 and source.stats["devices"]["ok"]["ok"] >= 6
    assert sink.of("bad", "pressure"), "the device did not come back once it answered properly"
    assert all(0.0 <= r.value <= 2.0 for r in sink.of("bad", "pressure"))
