"""The device inventory reaches the platform at start, on a reload that changes it, and on removal.

Real store, real uplink, the real platform simulator over HTTPS (which validates every record with
the v2 schemas). Configurations are written and loaded the way an installer's would be.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.clock import ManualClock
from edge.config import EstateConfig
from edge.inventory import sync_inventory
from edge.store import Store
from edge.uplink import Uplink
from tests.helpers.config import load
from tests.helpers.platform import PlatformSim

HYDRANT = {"id": "B2-HP-01", "name": "消火栓压力", "bus": "syn", "category": "fire_pressure", "profile": None,
           "location": {"building": "2栋", "floor": "顶层"}, "role": "most_unfavourable_point"}
METER = {"id": "B1-EM-01", "name": "1栋总电表", "bus": "syn", "category": "electricity", "location": {"building": "1栋"}}
CAMERA = {"id": "CAM-LANE-01", "name": "3栋北侧消防通道", "location": {"building": "3栋"},
          "stream": {"rtsp_uri": "rtsp://127.0.0.1:1/lane"}}


def config(tmp: Path, sim: PlatformSim, devices: list[dict[str, Any]], cameras: list[dict[str, Any]]) -> EstateConfig:
    return load(tmp, platform_url=sim.url, ca=sim.ca, extra={"devices": devices, "cameras": cameras})


async def upload(store: Store, cfg: EstateConfig, sim: PlatformSim) -> list[dict[str, Any]]:
    async with Uplink.from_config(store, cfg) as uplink:
        deadline = time.monotonic() + 20
        while not await uplink.drained():
            assert time.monotonic() < deadline, uplink.status()
            await asyncio.sleep(0.05)
    return sim.records("device")


async def test_inventory_at_start_on_reload_and_on_removal(tmp_path: Path, platform_sim: PlatformSim) -> None:
    clock = ManualClock(datetime(2026, 11, 27, tzinfo=UTC))
    first = config(tmp_path, platform_sim, [HYDRANT, METER], [CAMERA])
    async with Store.from_config(first.store, clock=clock) as store:
        # Start: one version-1 record per device and camera, with what the platform needs to read their data.
        sent = await sync_inventory(store, first, clock)
        assert sorted((r.device_id, r.version) for r in sent) == [
            ("B1-EM-01", 1), ("B2-HP-01", 1), ("CAM-LANE-01", 1)]
        records = {r["device_id"]: r for r in await upload(store, first, platform_sim)}
        hydrant = records["B2-HP-01"]
        assert (hydrant["estate_id"], hydrant["gateway_id"]) == (first.estate.id, first.estate.gateway_id)
        assert hydrant["kind"] == "pressure_transmitter" and hydrant["role"] == "most_unfavourable_point"
        assert hydrant["location"] == {"building": "2栋", "unit": None, "floor": "顶层", "room": None}
        # The limit in force is the building class's default (GB 50974 5.2.2), not only what the file says.
        assert hydrant["thresholds"]["pressure"]["low"] == 0.07 and hydrant["thresholds"]["pressure"]["unit"] == "MPa"
        assert records["CAM-LANE-01"]["kind"] == "camera" and records["CAM-LANE-01"]["thresholds"] == {}
        assert records["B1-EM-01"]["kind"] == "electricity_meter" and not records["B1-EM-01"]["removed"]

        # A restart or a reload with the same configuration sends nothing.
        assert await sync_inventory(store, first, clock) == []

        # A reload that raises the hydrant's limit: a new version of that device only.
        clock.advance(60)
        changed = config(tmp_path, platform_sim, [{**HYDRANT, "thresholds": {"pressure": {"low": 0.10}}}, METER],
                         [CAMERA])
        assert [(r.device_id, r.version) for r in await sync_inventory(store, changed, clock)] == [("B2-HP-01", 2)]

        # A reload without the meter: its last version says removed, the rest of the entry kept.
        clock.advance(60)
        without = config(tmp_path, platform_sim, [{**HYDRANT, "thresholds": {"pressure": {"low": 0.10}}}], [CAMERA])
        (gone,) = await sync_inventory(store, without, clock)
        assert (gone.device_id, gone.version, gone.info["removed"], gone.info["enabled"]) == ("B1-EM-01", 2, True, False)
        assert gone.info["name"] == "1栋总电表"
        assert await sync_inventory(store, without, clock) == []  # removed once, not again

        history = await upload(store, without, platform_sim)
    versions = sorted((r["device_id"], r["version"]) for r in history)
    assert versions == [("B1-EM-01", 1), ("B1-EM-01", 2), ("B2-HP-01", 1), ("B2-HP-01", 2), ("CAM-LANE-01", 1)]
    latest = {r["device_id"]: r for r in history if (r["device_id"], r["version"]) in
              {("B1-EM-01", 2), ("B2-HP-01", 2)}}
    assert latest["B2-HP-01"]["thresholds"]["pressure"]["low"] == 0.10
    assert latest["B1-EM-01"]["removed"] is True
    assert "rejected_records" not in platform_sim.stats()["counters"]
