"""A DL/T 645 meter and Modbus RTU devices on one RS-485 line (``shared_line: true`` on both buses), end to end.

One socat pseudo-terminal pair is the line; one simulator (``simulators.modbus.shared_line``) is every
device on it, telling the protocols apart by how a frame starts and keeping each protocol's own wire
timing. The gateway's DL/T 645 bus and Modbus RTU bus take turns on one port object, each at its own
baud rate (Linux ptys refuse even parity, so the mixed-parity case is `check`'s warning in
``test_dlt645_shared_line`` and the switch refusal in ``test_modbus_shared_line_link``).

Shown here: readings from both protocols in the store and at the platform through a real gateway; no
request ever ran into another (no framing errors, no collisions at the simulator); and a silent or
corrupt device on either protocol costs the others no more than the contract allows (no failed poll,
no skipped cycle, and a gap between their polls of at most one period plus the faulty device's
timeouts).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from drivers import serial_line
from drivers.dlt645.profile import load_profile
from drivers.dlt645.source import Dlt645Source
from drivers.modbus.codec import crc_ok
from drivers.modbus.driver import ModbusSource
from drivers.probe import probe_device
from edge.app import Gateway
from edge.cli import main as cli
from edge.config import EstateConfig
from edge.config.buses import Dlt645BusConfig, ModbusRtuBusConfig
from edge.rules import RuleEngine, TransitionKind
from simulators.dlt645.meter import SimMeter
from simulators.modbus.device import SimDevice
from simulators.modbus.shared_line import SharedLineServer, modbus_device
from tests.helpers.config import write_estate
from tests.helpers.platform import PlatformSim
from tests.helpers.sql import sql_rows
from tests.integration.modbus_support import RecordingSink, device

REPO = Path(__file__).resolve().parents[2]
METER_BAUD = 9600  # the DTSU666's DL/T 645 factory rate (its 8E1 parity cannot be set on a pty)
MODBUS_BAUD = 19200
METER = "000012345678"
PRESSURE = {"value": 0.32, "noise": 0.0}
PRESSURE_REGISTERS = {"unit_code": 0, "decimals": 3, "range_zero": 0, "range_full": 1.6}


@asynccontextmanager
async def shared_line(path: Path, meters: list[SimMeter], modbus: dict[int, SimDevice]) -> AsyncIterator[
        SharedLineServer]:
    server = SharedLineServer(str(path), meters, modbus, meter_baudrate=METER_BAUD, meter_parity="N",
                              modbus_baudrate=MODBUS_BAUD, modbus_parity="N")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def until(check: Any, timeout: float = 20.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.05)
    return result


# --------------------------------------------------------------------------- through the gateway


def _estate(tmp: Path, platform: PlatformSim, port: Path) -> tuple[Path, Path]:
    where = {"building": "2栋", "unit": "B1 水泵房"}
    buses = [
        {"kind": "dlt645", "id": "pump-room-meters", "port": str(port), "baudrate": METER_BAUD, "parity": "N",
         "shared_line": True},
        {"kind": "modbus_rtu", "id": "pump-room-modbus", "port": str(port), "baudrate": MODBUS_BAUD, "parity": "N",
         "shared_line": True},
    ]
    devices = [
        {"id": "B2-EM-01", "name": "2栋水泵房 电表", "bus": "pump-room-meters", "category": "electricity",
         "profile": "chint_dtsu666_dlt645", "options": {"address": METER}, "location": where,
         "poll_interval_s": 1.0, "timeout_s": 0.3},
        {"id": "B2-PT-01", "name": "2栋 消防管网压力", "bus": "pump-room-modbus", "category": "fire_pressure",
         "profile": "generic_rs485_pressure", "unit_id": 1, "location": where, "poll_interval_s": 0.3,
         "timeout_s": 0.3},
    ]
    return write_estate(tmp, platform_url=platform.url, ca=platform.ca, extra={"buses": buses, "devices": devices})


async def test_meter_and_modbus_readings_reach_the_store_and_the_platform(tmp_path: Path,
                                                                          platform_sim: PlatformSim) -> None:
    port = tmp_path / "pump-room-rs485"
    meter = SimMeter(METER, load_profile("chint_dtsu666_dlt645"))
    pressure = modbus_device(1, "generic_rs485_pressure", model=PRESSURE, registers=PRESSURE_REGISTERS)
    async with shared_line(port, [meter], {1: pressure}) as server:
        config, secrets = _estate(tmp_path, platform_sim, port)
        gateway = Gateway(config, secrets)
        task = asyncio.create_task(gateway.run(install_signals=False))

        async def stored(device_id: str, point: str) -> list[float]:
            if task.done():
                task.result()
            store = gateway.store
            if store is None:
                return []
            rows = await sql_rows(store, "SELECT value FROM readings WHERE device_id=? AND point=? ORDER BY ts_us",
                                    (device_id, point))
            return [r[0] for r in rows]

        async def at_platform() -> set[tuple[str, str]] | None:
            rows = await asyncio.to_thread(platform_sim.records, "telemetry")
            # One record per reading (contract v2) or per poll with its points (v3).
            got = {(r["device_id"], p["point"]) for r in rows for p in r.get("points", [r])}
            return got if {("B2-EM-01", "energy_import"), ("B2-PT-01", "pressure")} <= got else None

        try:
            energy = await until(lambda: stored("B2-EM-01", "energy_import"))
            assert energy[0] == pytest.approx(meter.energy_start_kwh, abs=0.05)
            assert (await until(lambda: stored("B2-PT-01", "pressure")))[0] == pytest.approx(0.32, abs=1e-6)
            voltages = await until(lambda: stored("B2-EM-01", "voltage_a"))
            assert 200 < voltages[0] < 250
            # Several polls of each, interleaved on the one port.
            await until(lambda: _at_least(stored("B2-EM-01", "energy_import"), 3))
            await until(lambda: _at_least(stored("B2-PT-01", "pressure"), 6))
            points = await until(at_platform, timeout=30)
            assert ("B2-EM-01", "frequency") in points
            store = gateway.store
            assert store is not None
            # Neither device was ever unreachable: no offline alarm, no failed poll reported as an event.
            assert await store.open_alarms() == []
            faults = await sql_rows(store, "SELECT code, data FROM events WHERE code LIKE '%corrupt_frame%'")
            assert faults == [], [json.loads(d) for _, d in faults]
            shared = serial_line._SHARED_PORTS[str(port)]
            assert shared.users == 2 and shared.switches >= 2  # one port object, switched between 9600 and 19200
        finally:
            gateway.request_stop()
            await asyncio.wait_for(task, 15)
        assert server.stats["meter_requests"] > 0 and server.stats["modbus_requests"] > 0
        # No request ran into another's frame or answer: each came after the other's silence.
        assert server.stats["framing_errors"] == 0 and server.stats["collisions"] == 0
        assert server.stats["crc_errors"] == 0 and server.stats["corrupt_requests"] == 0
    assert str(port) not in serial_line._SHARED_PORTS, "the port closes with its last bus"


async def _at_least(values: Any, n: int) -> bool:
    return len(await values) >= n


# --------------------------------------------------------------------------- a faulty device on the line


def _gaps(sink: RecordingSink, device_id: str, point: str) -> list[float]:
    stamps = sorted({r.ts for r in sink.of(device_id, point)})
    return [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]


@pytest.mark.parametrize("fault", ["modbus_silent", "modbus_corrupt", "meter_silent", "meter_corrupt"])
async def test_a_faulty_device_does_not_slow_the_others_beyond_the_contract(tmp_path: Path, fault: str) -> None:
    port = tmp_path / "rs485"
    # Wire time per period: two meters of 7 data items (~0.3 s each at 9,600 baud), two Modbus reads, and the
    # faulty device's worst case (0.3 s): the line is busy for under 80 % of the period.
    period, timeout, retries = 1.2, 0.15, 1
    meter = SimMeter(METER, load_profile("generic_household"))
    bad_meter = SimMeter("000000000099", load_profile("generic_household"))
    if fault.startswith("meter_"):
        setattr(bad_meter, fault.removeprefix("meter_"), True)
    mode = {"modbus_silent": "offline", "modbus_corrupt": "corrupt"}.get(fault, "normal")
    modbus = {1: modbus_device(1, "generic_rs485_pressure", model=PRESSURE, registers=PRESSURE_REGISTERS),
              2: modbus_device(2, "generic_rs485_pressure", model=PRESSURE, registers=PRESSURE_REGISTERS, mode=mode)}
    async with shared_line(port, [meter, bad_meter], modbus) as server:
        meters = Dlt645Source(
            Dlt645BusConfig(kind="dlt645", id="m", port=str(port), baudrate=METER_BAUD, parity="N", shared_line=True,
                            backoff_max_s=30),
            [device("EM", "m", "generic_household", 0, period=period, timeout=timeout, retries=retries,
                    options={"address": METER}),
             device("EM-BAD", "m", "generic_household", 0, period=period, timeout=timeout, retries=retries,
                    options={"address": bad_meter.address})])
        pumps = ModbusSource(
            ModbusRtuBusConfig(kind="modbus_rtu", id="p", port=str(port), baudrate=MODBUS_BAUD, parity="N",
                               shared_line=True, backoff_max_s=30),
            [device("PT", "p", "generic_rs485_pressure", 1, category="fire_pressure", period=period, timeout=timeout,
                    retries=retries),
             device("PT-BAD", "p", "generic_rs485_pressure", 2, category="fire_pressure", period=period,
                    timeout=timeout, retries=retries)])
        bad = "EM-BAD" if fault.startswith("meter_") else "PT-BAD"
        sink = RecordingSink()
        tasks = [asyncio.create_task(s.run(sink)) for s in (meters, pumps)]
        try:
            async with asyncio.timeout(20):
                while (len(sink.of("EM", "energy_import")) < 4 or len(sink.of("PT", "pressure")) < 4
                       or sum(1 for s in sink.statuses if s.device_id == bad and not s.online) < 3):
                    await asyncio.sleep(0.05)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with pytest.raises(asyncio.CancelledError):
                    await task
        stats = {**meters.stats["devices"], **pumps.stats["devices"]}
        framing_errors = server.stats["framing_errors"]
    # The faulty device: offline, never a reading, its corrupt frames counted and reported.
    assert stats[bad]["online"] is False
    assert not [r for r in sink.readings_seen if r.device_id == bad]
    if fault.endswith("corrupt"):
        assert stats[bad]["corrupt_frames"] >= 1
        protocol = "dlt645" if bad == "EM-BAD" else "modbus"
        assert f"{protocol}.corrupt_frame" in sink.event_codes(bad)
    else:
        assert stats[bad]["timeouts"] >= 3
    # Every other device, of either protocol: no failure, no skipped cycle, and its polls at most one
    # period plus the faulty device's worst case (every timeout of one poll with its retry) apart.
    worst = period + timeout * (retries + 1) + 0.3  # + a meter's data items at 9,600 baud and scheduling slack
    for good, point in (("EM", "energy_import"), ("PT", "pressure"),
                        *((("EM-BAD", "energy_import"),) if bad == "PT-BAD" else (("PT-BAD", "pressure"),))):
        assert stats[good]["failed"] == 0 and stats[good]["skipped_cycles"] == 0, (good, stats[good])
        gaps = _gaps(sink, good, point)
        assert gaps and max(gaps) <= worst, (good, gaps)
    assert framing_errors == 0


# --------------------------------------------------------------------------- the shipped example


def test_the_shipped_example_passes_check_with_the_mixed_parity_warning(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("platform_client_secret: s3cret\n", encoding="utf-8")
    secrets.chmod(0o600)
    example = REPO / "config" / "examples" / "shared-rs485-line.yaml"
    assert cli(["check", str(example), "--secrets", str(secrets)]) == 0
    err = capsys.readouterr().err
    assert "port /dev/ttyUSB1 is shared by buses with mixed parity (pump-room-meters E, pump-room-modbus N)" in err
    assert cli(["check", str(example), "--secrets", str(secrets), "--strict"]) == 1  # a warning fails --strict



def test_run_refuses_buses_on_one_port_unless_each_says_shared_line(tmp_path: Path) -> None:
    """`run` refuses what `check` refuses, before it opens the store or any port (a daemon process that
    started instead would still be running at the timeout)."""
    port = str(tmp_path / "rs485")
    config, secrets = write_estate(tmp_path, platform_url="https://127.0.0.1:9", ca=None, extra={
        "platform": {"enabled": False},
        "buses": [{"kind": "dlt645", "id": "m", "port": port, "shared_line": True},
                  {"kind": "modbus_rtu", "id": "p", "port": port}]})
    done = subprocess.run([sys.executable, "-m", "edge.cli", "run", str(config), "--secrets", str(secrets)],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert f"buses m, p all name port {port}: if this is one physical line, set shared_line: true on each of them " \
           "(missing on p)" in done.stderr
    assert not (tmp_path / "edge.db").exists()

# --------------------------------------------------------------------------- the simulator alone


async def test_the_line_simulator_runs_alone(tmp_path: Path) -> None:
    link = tmp_path / "pump-room-rs485"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.modbus.shared_line", "--link", str(link),
        "--meter", f"{METER}:generic_household", "--meter-parity", "N", "--modbus", "1:generic_rs485_pressure",
        "--modbus", "2:generic_rs485_level", "--silent", "2", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(15):
            while (line := (await proc.stdout.readline()).decode().strip()) != "READY":
                assert line, (await proc.stderr.read()).decode() if proc.stderr else "simulator exited"
                lines.append(line)
        assert lines == [f"dlt645 {link} {METER} generic_household",
                         f"modbus_rtu {link} unit 1 generic_rs485_pressure", f"modbus_rtu {link} unit 2 generic_rs485_level"]
        meters = Dlt645Source(Dlt645BusConfig(kind="dlt645", id="m", port=str(link), baudrate=9600, parity="N",
                                              shared_line=True),
                              [device("EM", "m", "generic_household", 0, period=0.5, options={"address": METER})])
        pumps = ModbusSource(ModbusRtuBusConfig(kind="modbus_rtu", id="p", port=str(link), shared_line=True), [
            device("PT", "p", "generic_rs485_pressure", 1, category="fire_pressure", period=0.3),
            device("LV", "p", "generic_rs485_level", 2, category="fire_level", period=0.3, timeout=0.1)])
        sink = RecordingSink()
        tasks = [asyncio.create_task(s.run(sink)) for s in (meters, pumps)]
        try:
            async with asyncio.timeout(15):
                while not (sink.of("EM", "energy_import") and sink.of("PT", "pressure")
                           and any(s.device_id == "LV" and not s.online for s in sink.statuses)):
                    await asyncio.sleep(0.05)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert not sink.of("LV", "level")  # --silent 2: the level transmitter never answers
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await proc.wait() == 0


# --------------------------------------------------------------------------- the panel's "test device"


async def test_the_panel_test_device_reads_a_modbus_device_while_the_meter_bus_holds_the_line(tmp_path: Path) -> None:
    port = tmp_path / "rs485"
    meter = SimMeter(METER, load_profile("generic_household"))
    pressure = modbus_device(3, "generic_rs485_pressure", model=PRESSURE, registers=PRESSURE_REGISTERS)
    meter_bus = Dlt645BusConfig(kind="dlt645", id="m", port=str(port), baudrate=METER_BAUD, parity="N",
                                shared_line=True)
    modbus_bus = ModbusRtuBusConfig(kind="modbus_rtu", id="p", port=str(port), baudrate=MODBUS_BAUD, parity="N",
                                    shared_line=True)
    em = device("EM", "m", "generic_household", 0, period=0.2, options={"address": METER})
    pt = device("PT", "p", "generic_rs485_pressure", 3, category="fire_pressure")
    config = EstateConfig.model_validate({
        "estate": {"id": "e1", "name": "E", "gateway_id": "g1"},
        "platform": {"url": "https://platform.example", "client_id": "c"},
        "buses": [meter_bus.model_dump(), modbus_bus.model_dump()],
        "devices": [em.model_dump(), pt.model_dump()],
    })
    async with shared_line(port, [meter], {3: pressure}):
        meters = Dlt645Source(meter_bus, [em])
        sink = RecordingSink()
        task = asyncio.create_task(meters.run(sink))
        try:
            async with asyncio.timeout(10):
                while not sink.of("EM", "energy_import"):
                    await asyncio.sleep(0.02)
            # The Modbus bus is not running: the probe opens its own link, which joins the meter bus's port
            # (a Modbus client of its own would be refused the port the meters hold).
            probes = [await probe_device(config, "PT") for _ in range(3)]
            polls = meters.stats["devices"]["EM"]["ok"]
            async with asyncio.timeout(10):
                while meters.stats["devices"]["EM"]["ok"] < polls + 2:
                    await asyncio.sleep(0.02)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    for probe in probes:
        assert probe.ok, probe.error
        assert [v.value for v in probe.values] == pytest.approx([0.32])
        assert probe.frames and all(crc_ok(f.data) for f in probe.frames)
        assert [f.direction for f in probe.frames] == ["tx", "rx"] * (len(probe.frames) // 2)
    assert meters.stats["devices"]["EM"]["failed"] == 0  # the meter's polls went on around the probes


# --------------------------------------------------------------------------- the whole line down


async def test_a_dead_line_is_one_link_alarm_for_the_meters_and_the_modbus_devices(tmp_path: Path) -> None:
    """An unplugged adapter or a cut pair silences both protocols: one ``link.offline`` for the physical
    line (GB/T 20299.3 8.1.8, no duplicate reports), not a ``device.offline`` per device of each bus."""
    port = tmp_path / "rs485"
    meter_bus = Dlt645BusConfig(kind="dlt645", id="m", port=str(port), baudrate=METER_BAUD, parity="N",
                                shared_line=True)
    modbus_bus = ModbusRtuBusConfig(kind="modbus_rtu", id="p", port=str(port), baudrate=MODBUS_BAUD, parity="N",
                                    shared_line=True)
    devices = [device("EM", "m", "generic_household", 0, period=0.3, timeout=0.1, options={"address": METER}),
               device("PT", "p", "generic_rs485_pressure", 1, category="fire_pressure", period=0.3, timeout=0.1),
               device("LV", "p", "generic_rs485_level", 2, category="fire_level", period=0.3, timeout=0.1)]
    engine = RuleEngine.from_config(EstateConfig.model_validate({
        "estate": {"id": "e1", "name": "E", "gateway_id": "g1"},
        "platform": {"url": "https://platform.example", "client_id": "c"},
        "buses": [meter_bus.model_dump(), modbus_bus.model_dump()],
        "devices": [d.model_dump() for d in devices],
    }))
    modbus = {1: modbus_device(1, "generic_rs485_pressure", model=PRESSURE, registers=PRESSURE_REGISTERS),
              2: modbus_device(2, "generic_rs485_level", model={"value": 3.2, "noise": 0.0},
                               registers={"unit_code": 7, "decimals": 2, "range_zero": 0, "range_full": 5})}
    sources = [Dlt645Source(meter_bus, devices[:1]), ModbusSource(modbus_bus, devices[1:])]
    sink = RecordingSink()
    async with shared_line(port, [SimMeter(METER, load_profile("generic_household"))], modbus) as server:
        tasks = [asyncio.create_task(s.run(sink)) for s in sources]
        try:
            async with asyncio.timeout(10):
                while not all(sink.of(d, p) for d, p in (("EM", "energy_import"), ("PT", "pressure"),
                                                          ("LV", "level"))):
                    await asyncio.sleep(0.02)
            await server.stop()  # the line goes dead under all three devices
            async with asyncio.timeout(15):
                while not all(sum(1 for s in sink.statuses if s.device_id == d and not s.online) >= 4
                              for d in ("EM", "PT", "LV")):
                    await asyncio.sleep(0.05)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert {s.link for s in sink.statuses} == {f"rs485:{port}"}
    raised = [t for s in sink.statuses for t in engine.on_status(s) if t.kind is TransitionKind.RAISE]
    assert [(t.code, t.subject) for t in raised] == [("link.offline", f"rs485:{port}")]
