"""The panel's "test device" for Modbus against the simulator: over TCP on 127.0.0.1 and over a
socat pty (RTU). Checks the raw frames (MBAP header, RTU CRC), the decoded values against what
polling decodes, and the errors of a device that does not answer, refuses, or cannot be reached."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from drivers.modbus.codec import crc_ok
from drivers.modbus.driver import ModbusSource
from drivers.probe import probe_device
from edge.config import EstateConfig
from edge.config.buses import ModbusRtuBusConfig, ModbusTcpBusConfig
from edge.config.devices import DeviceConfig
from edge.panel_wiring import build_panel_hooks
from edge.probes import DeviceProbe, ProbeFrame
from edge.supervisor import Supervisor
from simulators.modbus.scenario import Scenario
from simulators.modbus.simulator import ModbusSimulator
from tests.helpers.waiting import eventually
from tests.integration.modbus_support import RecordingSink, device, run_for

PRESSURE = {"profile": "generic_rs485_pressure", "model": {"value": 0.30, "noise": 0.0},
            "registers": {"unit_code": 1, "decimals": 1, "range_zero": 0, "range_full": 1.6}}


def estate(bus: ModbusTcpBusConfig | ModbusRtuBusConfig, devices: list[DeviceConfig]) -> EstateConfig:
    return EstateConfig.model_validate({
        "estate": {"id": "e1", "name": "E", "gateway_id": "g1"},
        "platform": {"url": "https://platform.example", "client_id": "c"},
        "buses": [bus.model_dump()],
        "devices": [d.model_dump() for d in devices],
    })


def pairs(probe: DeviceProbe) -> list[tuple[ProbeFrame, ProbeFrame | None]]:
    """Request/response pairs in wire order (a response may be missing)."""
    out: list[tuple[ProbeFrame, ProbeFrame | None]] = []
    for frame in probe.frames:
        if frame.direction == "tx":
            out.append((frame, None))
        else:
            assert out and out[-1][1] is None, "a response without its request"
            out[-1] = (out[-1][0], frame)
    return out


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_tcp_probe_shows_mbap_frames_and_decodes_as_polling_does() -> None:
    sc = Scenario.model_validate({"name": "t", "tcp": [{"id": "c", "port": 0, "devices": [
        {"id": "m", "unit_id": 7, "profile": "eastron_sdm120", "model": {"energy": 4321.0}},
        {"id": "dead", "unit_id": 9, "profile": "eastron_sdm120", "behaviour": {"mode": "offline"}},
        {"id": "exc", "unit_id": 5, "profile": "eastron_sdm120", "behaviour": {"mode": "exception", "code": 4}},
    ]}]})
    async with ModbusSimulator(sc) as sim:
        bus = ModbusTcpBusConfig(kind="modbus_tcp", id="b1", host="127.0.0.1", port=sim.tcp_servers[0].port)
        devices = [device("m", "b1", "eastron_sdm120", 7), device("dead", "b1", "eastron_sdm120", 9, timeout=0.3),
                   device("exc", "b1", "eastron_sdm120", 5),
                   device("gone", "b1", "eastron_sdm120", 1, options={"port": closed_port()})]
        config = estate(bus, devices)
        probe = await probe_device(config, "m")
        requests = list(sim.device("m").requests)
        dead = await probe_device(config, "dead")
        refused = await probe_device(config, "exc")
        gone = await probe_device(config, "gone")
        # What polling reports for the same device (the model holds still: no noise on energy).
        source = ModbusSource(config.buses[0], [config.devices[0]])  # type: ignore[arg-type]
        sink = RecordingSink()
        await run_for(source, sink, 0.4)

    assert probe.ok and probe.error is None and probe.duration_ms is not None
    exchanged = pairs(probe)
    assert len(exchanged) == len(requests) == 3  # 0x0000+38, 0x0046+10, 0x0156+4: one transaction each
    for (tx, rx), (fc, address, count) in zip(exchanged, requests, strict=True):
        tid, pid, length, unit, tx_fc, tx_addr, tx_count = struct.unpack(">HHHBBHH", tx.data)
        assert (pid, length, unit, tx_fc, tx_addr, tx_count) == (0, 6, 7, fc, address, count)
        assert rx is not None
        rx_tid, rx_pid, rx_length, rx_unit, rx_fc, byte_count = struct.unpack(">HHHBBB", rx.data[:9])
        assert (rx_tid, rx_pid, rx_unit, rx_fc) == (tid, 0, 7, fc)
        assert rx_length == len(rx.data) - 6 and byte_count == 2 * count == len(rx.data) - 9
    values = {v.point: v for v in probe.values}
    polled = sink.latest()
    assert set(values) == {p for (d, p) in polled if d == "m"}
    assert values["energy_import"].value == pytest.approx(4321.0, abs=0.01)
    assert values["energy_import"].unit == "kWh"
    assert values["voltage"].value == pytest.approx(polled[("m", "voltage")].value, rel=0.05)
    # The raw registers shown are the response's bytes at the point's address (0x0048 in the 0x0046 block).
    energy_rx = exchanged[1][1]
    assert energy_rx is not None
    at = 9 + 2 * (0x48 - 0x46)
    assert values["energy_import"].raw == f"0x0048: {energy_rx.data[at:at + 2].hex()} {energy_rx.data[at + 2:at + 4].hex()}"
    assert struct.unpack(">f", energy_rx.data[at:at + 4])[0] == pytest.approx(values["energy_import"].value)

    # A silent unit: the request went out, nothing came back, the timeout is the error.
    assert not dead.ok and not dead.values
    assert [f.direction for f in dead.frames] == ["tx"]
    assert "no answer within 0.3 s" in (dead.error or "") and "unit 9" in (dead.error or "")
    # An exception answer is shown as received (function code | 0x80, the code) and named.
    assert not refused.ok and [f.direction for f in refused.frames] == ["tx", "rx"]
    assert refused.frames[1].data[7:] == bytes([0x84, 0x04])
    assert "exception code 0x04" in (refused.error or "")
    # Nobody listening: nothing on the wire, the connection error names the endpoint.
    assert not gone.ok and gone.frames == ()
    assert "127.0.0.1:" in (gone.error or "") and "device gone" in (gone.error or "")


def rtu_scenario(tmp_path: Path, devices: list[dict[str, Any]]) -> Scenario:
    return Scenario.model_validate(
        {"name": "rtu", "rtu": [{"id": "l1", "link": str(tmp_path / "rtu"), "baudrate": 19200, "devices": devices}]}
    )


async def test_rtu_probe_shows_crc_frames_and_shares_the_polled_line(tmp_path: Path) -> None:
    sc = rtu_scenario(tmp_path, [{"id": "h", "unit_id": 3, **PRESSURE},
                                 {"id": "bad", "unit_id": 4, **PRESSURE,
                                  "behaviour": {"mode": "corrupt", "probability": 1.0}}])
    bus = ModbusRtuBusConfig(kind="modbus_rtu", id="l1", port=str(tmp_path / "rtu"), baudrate=19200)
    devices = [device("h", "l1", "generic_rs485_pressure", 3, category="fire_pressure"),
               device("bad", "l1", "generic_rs485_pressure", 4, category="fire_pressure")]
    config = estate(bus, devices)
    async with ModbusSimulator(sc) as sim:
        probe = await probe_device(config, "h")
        requests = list(sim.device("h").requests)
        corrupt = await probe_device(config, "bad")
        # While the daemon polls the line (fast, so probe and poller contend for it), the probe borrows
        # the poller's link: its transactions queue between the poller's own instead of failing.
        fast = config.devices[0].model_copy(update={"poll_interval_s": 0.1})
        source = ModbusSource(config.buses[0], [fast])  # type: ignore[arg-type]
        sink = RecordingSink()
        supervisor = Supervisor(sink)
        supervisor.start(source)
        for _ in range(100):
            if sink.latest():
                break
            await asyncio.sleep(0.02)
        polls_before = source.stats["devices"]["h"]["ok"]
        shared = [await probe_device(config, "h", [source]) for _ in range(5)]
        # The panel's hook finds the running source through the daemon's supervisor by itself.
        panel_hooks = build_panel_hooks(SimpleNamespace(config=config, supervisor=supervisor))  # type: ignore[arg-type]
        assert panel_hooks.test_device is not None
        shared.append(await panel_hooks.test_device("h"))
        await eventually(lambda: source.stats["devices"]["h"]["ok"] > polls_before, what="polling going on around the probes")
        polls_after = source.stats["devices"]["h"]["ok"]
        line = source.stats["links"][0]
        # A program that opens the port on its own (no running source to borrow from) is refused,
        # and the probe says why, naming the port.
        busy = await probe_device(config, "h")
        borrowed = source.live_link()
        await supervisor.stop_all()
        assert source.live_link() is None  # a stopped bus lends nothing
        assert borrowed is not None and borrowed.retired and not borrowed.connected

    assert probe.ok, probe.error
    exchanged = pairs(probe)
    assert len(exchanged) == len(requests) >= 1
    for (tx, rx), (fc, address, count) in zip(exchanged, requests, strict=True):
        assert len(tx.data) == 8 and crc_ok(tx.data)
        assert struct.unpack(">BBHH", tx.data[:6]) == (3, fc, address, count)
        assert rx is not None and crc_ok(rx.data)
        assert rx.data[:3] == bytes([3, fc, 2 * count]) and len(rx.data) == 5 + 2 * count
    values = {v.point: v for v in probe.values}
    assert set(values) == {"pressure"}  # unit code, decimals and range are read for its sake only
    assert values["pressure"].value == pytest.approx(0.30, abs=1e-9) and values["pressure"].unit == "MPa"
    assert values["pressure"].raw == "0x0004: 0bb8"  # 3000 with one decimal place, in kPa (unit code 1)

    assert not corrupt.ok and "corrupt frame" in (corrupt.error or "")
    rx = [f for f in corrupt.frames if f.direction == "rx"]
    assert rx and not crc_ok(rx[0].data)  # shown as it arrived, bad CRC and all

    assert sink.latest()[("h", "pressure")].value == pytest.approx(0.30)
    for one in shared:
        assert one.ok, one.error
        assert [v.value for v in one.values] == pytest.approx([0.30])
        assert all(crc_ok(f.data) for f in one.frames) and len(pairs(one)) == len(requests)
    assert polls_after > polls_before  # polling went on around the probes
    assert line["corrupt_frames"] == 0 and line["stale_frames"] == 0  # nobody talked over anybody
    assert source.stats["devices"]["h"]["failed"] == 0
    assert not busy.ok and busy.frames == ()
    assert f"cannot open serial port {tmp_path / 'rtu'}" in (busy.error or ""), busy.error
    assert "lock" in (busy.error or "")  # the reason from the operating system, not just "failed"


async def test_probe_of_a_di_module_shows_one_fc2_frame_and_each_input_bit() -> None:
    sc = Scenario.model_validate({"name": "t", "tcp": [{"id": "c", "port": 0, "devices": [
        {"id": "di", "unit_id": 3, "profile": "generic_di8_module", "model": {"di1": 1, "di6": 1}}]}]})
    async with ModbusSimulator(sc) as sim:
        bus = ModbusTcpBusConfig(kind="modbus_tcp", id="b1", host="127.0.0.1", port=sim.tcp_servers[0].port)
        config = estate(bus, [device("di", "b1", "generic_di8_module", 3, category="other")])
        probe = await probe_device(config, "di")
    assert probe.ok, probe.error
    ((tx, rx),) = pairs(probe)  # eight inputs, one request
    assert struct.unpack(">BBHH", tx.data[6:]) == (3, 2, 0, 8)
    assert rx is not None and rx.data[7:] == bytes([2, 1, 0b0010_0001])  # FC2, 1 byte: inputs 1 and 6
    values = {v.point: v for v in probe.values}
    assert {p: v.value for p, v in values.items()} == {f"di{i}": float(i in (1, 6)) for i in range(1, 9)}
    assert values["di6"].raw == "0x0005: 1" and values["di2"].raw == "0x0001: 0"
