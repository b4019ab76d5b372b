"""The BLE source fed by recorded advertisements through its scanner interface.

The Bluetooth radio is the one part that cannot run here (no adapter, no BlueZ in CI), so the
advertisements come from ``simulators.ble.ReplayScanner`` replaying recorded bytes; everything
after the scanner (MAC matching, decoding, repeats, RSSI, offline after silence, the scan list)
is the real source. The last test starts the real bleak scanner, which fails on this machine for
want of an adapter, to show how the source reports that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from drivers.ble.driver import BleSource
from drivers.ble.scanner import Scanner
from edge.config.buses import BleBusConfig
from edge.config.devices import DeviceConfig
from simulators.ble.replay import RECORDINGS, ReplayScanner, load_recording
from tests.helpers.sink import RecordingSink
from tests.helpers.waiting import eventually

PV, ATC, DOOR, TH = "A4:C1:38:12:34:56", "A4:C1:38:AB:CD:EF", "7C:C6:B6:01:02:03", "38:1F:8D:44:55:66"


def bus(**kw: Any) -> BleBusConfig:
    return BleBusConfig.model_validate({"kind": "ble", "id": "ble0", "adapter": "hci0", **kw})


def sensor(device_id: str, mac: str, **options: Any) -> DeviceConfig:
    return DeviceConfig.model_validate({
        "id": device_id, "name": device_id, "bus": "ble0", "category": "environment",
        "location": {"building": "地下室", "room": "水泵房"}, "options": {"mac": mac, **options},
    })




def replay(loops: int = 1) -> Callable[[BleBusConfig], Scanner]:
    records = load_recording(RECORDINGS / "pump_room.jsonl")
    return lambda _bus: ReplayScanner(records, loops=loops)


async def test_recorded_pump_room_advertisements() -> None:
    source = BleSource(bus(), [sensor("t-pvvx", PV), sensor("t-atc", ATC.lower()), sensor("door", DOOR),
                               sensor("th", TH, format="bthome_v2")], scanner_factory=replay())
    sink = RecordingSink()
    task = asyncio.create_task(source.run(sink))
    try:
        await eventually(lambda: source.advertisements == 10 and ("door", "door") in sink.latest() and
                         len(sink.of("door", "door")) == 2, what="the whole recording")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # pvvx: the repeated frame gave no second set; the wrong-MAC frame was refused; the next one counted.
    assert [r.value for r in sink.of("t-pvvx", "temperature")] == [8.52, 8.61]
    assert sink.latest()[("t-pvvx", "humidity")].value == pytest.approx(90.95)
    assert sink.latest()[("t-pvvx", "battery")].value == 84 and sink.latest()[("t-pvvx", "rssi_dbm")].value == -66
    stats = source.stats["devices"]
    assert stats["t-pvvx"]["errors"] == 1 and "not the advertiser's" in (stats["t-pvvx"]["last_error"] or "")
    assert stats["t-pvvx"]["format"] == "pvvx" and stats["t-pvvx"]["counter"] == 18
    assert sink.latest()[("t-atc", "temperature")].value == pytest.approx(-3.4)
    assert [r.value for r in sink.of("door", "door")] == [1.0, 0.0]
    assert sink.latest()[("th", "temperature")].value == pytest.approx(24.37)
    assert stats["th"]["errors"] == 1 and "encrypted" in (stats["th"]["last_error"] or "")
    assert {s.device_id for s in sink.statuses if s.online} == {"t-pvvx", "t-atc", "door", "th"}
    # The scan list has every advertiser, the stranger too, strongest first.
    scan = source.stats["scan_list"]
    assert scan[0]["address"] == DOOR
    stranger = next(e for e in scan if e["address"] == "11:22:33:44:55:66")
    assert stranger["device_id"] is None and stranger["format"] == "bthome_v2" and stranger["rssi"] == -90


async def test_offline_after_silence_and_back() -> None:
    records = load_recording(RECORDINGS / "pump_room.jsonl")
    door_only = [(t, r) for t, r in records if r["address"] == DOOR]
    scanners = [ReplayScanner(door_only[:1]), ReplayScanner(door_only[1:])]
    gate = asyncio.Event()

    class Gated:
        """First one frame, then silence until the test opens the gate, then the next frame."""

        def __init__(self) -> None:
            self.inner = scanners.pop(0)

        async def __aenter__(self) -> Gated:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

        async def advertisements(self):  # type: ignore[no-untyped-def]
            async for adv in self.inner.advertisements():
                yield adv
            await gate.wait()
            async for adv in scanners[0].advertisements():
                yield adv

    source = BleSource(bus(), [sensor("door", DOOR, offline_after_s=0.3)], scanner_factory=lambda _b: Gated())
    sink = RecordingSink()
    task = asyncio.create_task(source.run(sink))
    try:
        await eventually(lambda: [s.online for s in sink.statuses] == [True, False], what="offline after 0.3 s")
        gate.set()
        await eventually(lambda: [s.online for s in sink.statuses] == [True, False, True], what="heard again")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert "no advertisement for" in (sink.statuses[1].error or "")
    assert [r.value for r in sink.of("door", "door")] == [1.0, 0.0]


async def test_no_adapter_reports_every_sensor_offline_and_keeps_trying() -> None:
    # The real bleak scanner: this machine has no Bluetooth adapter (no BlueZ), so starting it fails.
    source = BleSource(bus(), [sensor("t-pvvx", PV), sensor("door", DOOR)])
    sink = RecordingSink()
    task = asyncio.create_task(source.run(sink))
    try:
        await eventually(lambda: len(sink.statuses) >= 2, what="offline statuses")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert {s.device_id for s in sink.statuses} == {"t-pvvx", "door"} and not any(s.online for s in sink.statuses)
    assert all("adapter hci0" in (s.error or "") and "BlueZ is not reachable" in (s.error or "") for s in sink.statuses)
    assert source.stats["scanner_errors"] >= 1 and not source.stats["scanning"]


def test_bad_device_options_name_the_device() -> None:
    from edge.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        BleSource(bus(), [sensor("a", "not-a-mac"), sensor("b", PV, format="ibeacon"), sensor("c", PV), sensor("d", PV)])
    text = "\n".join(err.value.problems)
    assert "device a: options.mac must be a MAC address" in text
    assert "device b: options.format must be one of" in text
    assert "device d: MAC A4:C1:38:12:34:56 is already c" in text


async def test_probe_reports_what_the_running_scanner_heard() -> None:
    from drivers.ble.probe import probe_ble_device

    pv = sensor("t-pvvx", PV)
    assert not probe_ble_device(bus(), pv).ok  # no running bus: no second scanner is opened
    source = BleSource(bus(), [pv], scanner_factory=replay())
    sink = RecordingSink()
    task = asyncio.create_task(source.run(sink))
    try:
        await eventually(lambda: source.advertisements == 10, what="the recording")
        probe = probe_ble_device(bus(), pv, [source])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert probe.ok and {v.point: v.value for v in probe.values}["temperature"] == 8.61
    assert {v.point: v.value for v in probe.values}["rssi_dbm"] == -66
