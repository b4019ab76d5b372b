"""Each shipped profile decodes known frames (hand-written from devices.md) over a real socat pty."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.modbus.driver import ModbusSource
from edge.config.buses import ModbusRtuBusConfig
from edge.records import Quality
from tests.integration.modbus_support import RecordingSink, Replayer, device, known_frames, run_for, socat_pair

CATEGORY = {"generic_rs485_pressure": "fire_pressure", "generic_rs485_level": "fire_level",
            "xintai_water_meter": "water"}


async def test_every_profile_decodes_its_known_frame(tmp_path: Path) -> None:
    entries = known_frames()
    assert len({e["unit_id"] for e in entries}) == len(entries), "one unit id per fixture entry"
    assert {e["profile"] for e in entries} >= {
        "chint_ddsu666", "chint_dtsu666", "eastron_sdm120", "eastron_sdm630", "acrel_adl400",
        "xintai_water_meter", "generic_rs485_pressure", "generic_rs485_level",
    }
    async with socat_pair(tmp_path) as (gateway_end, device_end):
        replayer = Replayer.from_fixture(device_end, entries)
        replayer.start()
        try:
            bus = ModbusRtuBusConfig(kind="modbus_rtu", id="known", port=gateway_end, baudrate=115200)
            devices = [
                device(f"d{e['unit_id']}", "known", e["profile"], e["unit_id"],
                       category=CATEGORY.get(e["profile"], "electricity"), period=0.4, timeout=0.3)
                for e in entries
            ]
            source = ModbusSource(bus, devices)
            sink = RecordingSink()
            await run_for(source, sink, 1.2)
        finally:
            replayer.stop()
    latest = sink.latest()
    problems = []
    for entry in entries:
        dev = f"d{entry['unit_id']}"
        for point, expected in entry["expect"].items():
            reading = latest.get((dev, point))
            if reading is None:
                problems.append(f"{entry['profile']} ({dev}) {point}: no reading")
            elif reading.value != pytest.approx(expected, rel=1e-5, abs=1e-6):
                problems.append(f"{entry['profile']} ({dev}) {point}: {reading.value} != {expected}")
            elif reading.quality is not Quality.GOOD:
                problems.append(f"{entry['profile']} ({dev}) {point}: quality {reading.quality.name}")
    assert not problems, "\n".join(problems)
    # Units are the profiles' canonical ones.
    assert latest[("d1", "active_power")].unit == "W" and latest[("d5", "pressure")].unit == "MPa"
    assert latest[("d7", "level")].unit == "m" and latest[("d4", "volume_forward")].unit == "m³"
    # Configuration registers are read but never reported.
    assert ("d5", "unit_code") not in latest and ("d8", "ct_ratio") not in latest
