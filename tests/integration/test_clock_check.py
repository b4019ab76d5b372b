"""Clock-jump detection through the real uplink: the platform simulator's Date header judges our clock."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.clock import ManualClock
from edge.records import Reading
from edge.store import Store
from edge.timecheck import JUMP_EVENT, RECOVERED_EVENT, ClockCheck
from edge.uplink import Uplink
from tests.helpers.config import load
from tests.helpers.platform import PlatformSim
from tests.helpers.sql import sql_one


async def drain(uplink: Uplink, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await uplink.drained():
        assert time.monotonic() < deadline, uplink.status()
        await asyncio.sleep(0.05)


async def test_gateway_two_hours_ahead_is_detected_flagged_and_reported(tmp_path: Path,
                                                                      platform_sim: PlatformSim) -> None:
    config = load(tmp_path, platform_url=platform_sim.url, ca=platform_sim.ca)
    clock = ManualClock(datetime.now(UTC) + timedelta(hours=2))  # the RTC is two hours fast
    async with Store.from_config(config.store, clock=clock) as store:
        check = ClockCheck(store, clock)
        async with Uplink.from_config(store, config, on_date_header=check.observe_date) as uplink:
            await store.append_readings([Reading("B1-EM-01", "energy_import", 1.0, "kWh", clock.now())])
            uplink.wake()
            await drain(uplink)
            assert check.suspect and 7100 < (check.offset_s or 0) < 7300 and check.bad_headers == 0
            await check.flush()
            uplink.wake()
            await drain(uplink)
            # NTP steps the clock back: the step itself is seen against the monotonic clock too.
            clock.set(datetime.now(UTC))
            step = check.check_local()
            assert step is not None and step.source == "monotonic" and step.offset_s < -7000
            await store.append_readings([Reading("B1-EM-01", "energy_import", 2.0, "kWh", clock.now())])
            uplink.wake()
            await drain(uplink)
            assert not check.suspect
            await check.flush()
            uplink.wake()
            await drain(uplink)
        row = await sql_one(store, "SELECT quality FROM readings ORDER BY id LIMIT 1")
        assert row == (1,)  # flagged uncertain locally
    events = platform_sim.records("event")
    jumps = {e["data"]["source"]: e for e in events if e["code"] == JUMP_EVENT}
    assert set(jumps) == {"platform", "monotonic"}
    platform = jumps["platform"]
    assert 7100 < platform["data"]["offset_s"] < 7300 and platform["severity"] == "warning"
    assert platform["data"]["flagged"]["telemetry"] == 1
    assert jumps["monotonic"]["data"]["offset_s"] < -7000
    assert [e["code"] for e in events].count(RECOVERED_EVENT) == 1
