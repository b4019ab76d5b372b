"""DL/T 645 meters on a real socat pseudo-terminal against the simulator, which keeps the wire's timing
at the line's baud rate and parity. The sink records what the source hands to the pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from drivers.dlt645.codec import scan_frame
from drivers.dlt645.profile import load_profile
from drivers.dlt645.source import Dlt645Source
from edge.config.buses import Dlt645BusConfig
from edge.errors import ConfigError
from simulators.dlt645.line import MeterLineServer
from simulators.dlt645.meter import SimMeter
from tests.helpers.sources import running
from tests.integration.modbus_support import RecordingSink, device

BAUD = 9600


def meter_device(device_id: str, address: str, profile: str = "generic_household", **kw: Any) -> Any:
    kw.setdefault("period", 1.0)
    return device(device_id, "m1", profile, 0, options={"address": address}, **kw)


def bus(tmp_path: Path, **kw: Any) -> Dlt645BusConfig:
    return Dlt645BusConfig(kind="dlt645", id="m1", port=str(tmp_path / "dlt645"), baudrate=BAUD, **kw)


@asynccontextmanager
async def line(tmp_path: Path, meters: list[SimMeter]) -> AsyncIterator[MeterLineServer]:
    server = MeterLineServer(str(tmp_path / "dlt645"), meters, scan_frame, baudrate=BAUD, parity="E")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()




async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def sim(address: str, profile: str = "generic_household", **kw: Any) -> SimMeter:
    return SimMeter(address, load_profile(profile), **kw)


async def test_meters_are_read_with_every_point_in_its_unit(tmp_path: Path) -> None:
    household = sim("665544332211")
    three = sim("000000000002", "generic_three_phase", overrides={"current_b": -1.25})
    async with line(tmp_path, [household, three]) as server:
        source = Dlt645Source(bus(tmp_path), [meter_device("h", "665544332211"),
                                              meter_device("t", "2", "generic_three_phase")])
        sink = RecordingSink()
        async with running(source, sink):
            await until(lambda: len(sink.of("h", "energy_import")) >= 2 and sink.of("t", "frequency"))
    latest = sink.latest()
    assert latest[("h", "energy_import")].value == pytest.approx(12345.67, abs=0.02)
    assert latest[("h", "energy_import")].unit == "kWh"
    assert latest[("h", "voltage")].value == pytest.approx(household.value("voltage"), abs=3)
    assert latest[("h", "active_power")].unit == "W" and latest[("h", "active_power")].value > 1000
    assert latest[("t", "current_b")].value == pytest.approx(-1.25)  # the sign bit survives the trip
    assert {r.point for r in sink.readings_seen if r.device_id == "t"} == set(load_profile("generic_three_phase").points)
    assert all(s.online for s in sink.statuses)
    # One poll's readings share one timestamp (a poll is atomic).
    polls = {r.ts for r in sink.of("h", "voltage")}
    assert all(len({r.point for r in sink.readings_seen if r.device_id == "h" and r.ts == ts}) == 7 for ts in polls)
    # Every transaction the line counted reached the meter, except perhaps the one the stop cut off
    # after it was counted and before its bytes were read on the far end of the pty.
    assert 0 <= source.stats["links"][0]["transactions"] - server.stats["requests"] <= 1


async def test_silent_meter_goes_offline_without_slowing_the_other(tmp_path: Path) -> None:
    live, dead = sim("000000000001"), sim("000000000009", silent=True)
    async with line(tmp_path, [live, dead]):
        source = Dlt645Source(bus(tmp_path, backoff_max_s=30), [
            meter_device("live", "1", period=0.5),
            meter_device("dead", "9", period=0.5, timeout=0.15, retries=1),
        ])
        sink = RecordingSink()
        async with running(source, sink):
            await until(lambda: sum(1 for s in sink.statuses if s.device_id == "dead" and not s.online) >= 4)
            await until(lambda: len(sink.of("live", "voltage")) >= 6)
    stats = source.stats["devices"]
    assert stats["dead"]["online"] is False and stats["dead"]["timeouts"] >= 4
    assert stats["live"]["failed"] == 0 and stats["live"]["skipped_cycles"] == 0
    # A dead meter costs its first DI only: one retry on the first failed poll, then one attempt per poll.
    assert stats["dead"]["requests"] == 0 and stats["dead"]["timeouts"] == stats["dead"]["polls"] + 1
    assert not sink.of("dead", "voltage")


@pytest.mark.parametrize(("switch", "reason"), [("corrupt", "checksum"), ("truncate", "truncated")])
async def test_corrupt_replies_are_refused_counted_and_never_readings(tmp_path: Path, switch: str, reason: str) -> None:
    bad = sim("000000000003", **{switch: True})
    async with line(tmp_path, [bad, sim("000000000004")]):
        source = Dlt645Source(bus(tmp_path), [meter_device("bad", "3", period=0.5, timeout=0.2),
                                              meter_device("good", "4", period=0.5)])
        sink = RecordingSink()
        async with running(source, sink):
            await until(lambda: "dlt645.corrupt_frame" in sink.event_codes("bad") and sink.of("good", "voltage"))
    assert not sink.of("bad", "voltage") and not sink.of("bad", "energy_import")
    assert source.stats["devices"]["bad"]["corrupt_frames"] >= 1
    event = next(e for e in sink.events_seen if e.code == "dlt645.corrupt_frame")
    assert event.data["reason"] == reason and "DI 00010000" in event.data["detail"]
    assert source.stats["links"][0]["corrupt_frames"] >= 1


async def test_garbage_before_a_reply_is_skipped_and_counted(tmp_path: Path) -> None:
    async with line(tmp_path, [sim("000000000005", garbage=True)]):
        source = Dlt645Source(bus(tmp_path), [meter_device("g", "5")])
        sink = RecordingSink()
        async with running(source, sink):
            await until(lambda: sink.of("g", "energy_import"))
    assert source.stats["links"][0]["garbage_bytes"] >= 3 * 7
    assert source.stats["devices"]["g"]["corrupt_frames"] == 0


async def test_optional_item_the_meter_lacks_is_dropped_once(tmp_path: Path) -> None:
    meter = sim("000000000006", "generic_household")
    trimmed = meter.profile.model_copy(update={"points": {k: v for k, v in meter.profile.points.items()
                                                          if k != "frequency"}})
    meter.profile = trimmed  # this meter's firmware has no frequency item
    async with line(tmp_path, [meter]):
        source = Dlt645Source(bus(tmp_path), [meter_device("o", "6", period=0.3)])
        sink = RecordingSink()
        async with running(source, sink):
            await until(lambda: len(sink.of("o", "voltage")) >= 3)
    assert sink.event_codes("o").count("dlt645.point_unsupported") == 1
    assert not sink.of("o", "frequency") and source.stats["devices"]["o"]["failed"] == 0


async def test_1997_meter(tmp_path: Path) -> None:
    async with line(tmp_path, [sim("000000000007", "generic_household_1997")]):
        source = Dlt645Source(bus(tmp_path), [meter_device("old", "7", "generic_household_1997")])
        sink = RecordingSink()
        async with running(source, sink):
            await until(lambda: sink.of("old", "energy_import") and sink.of("old", "active_power"))
    assert sink.latest()[("old", "voltage")].value == pytest.approx(229, abs=3)  # XXX V: whole volts


def test_config_problems_name_the_device(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Dlt645Source(bus(tmp_path), [
            meter_device("a", "1"), meter_device("b", "000000000001"),
            device("c", "m1", "generic_household", 0),
            meter_device("d", "12x"),
            meter_device("e", "2", "no_such_profile"),
        ])
    text = "\n".join(info.value.problems)
    assert "device b: address 000000000001 is already a's" in text
    assert "device c: options.address is required" in text
    assert "device d: options.address must be up to 12 decimal digits, not '12x'" in text
    assert "device e: unknown profile 'no_such_profile'" in text


async def test_multi_frame_replies_are_followed_up_and_joined(tmp_path: Path) -> None:
    meter = sim("000000000008", split_replies=True)
    async with line(tmp_path, [meter]) as server:
        source = Dlt645Source(bus(tmp_path), [meter_device("split", "8")])
        sink = RecordingSink()
        async with running(source, sink):
            await until(lambda: sink.of("split", "energy_import"))
    assert sink.latest()[("split", "energy_import")].value == pytest.approx(12345.67, abs=0.02)
    # Every data item took two transactions: the first part (0xB1) and the follow-up read (0x12 -> 0x92).
    assert server.stats["requests"] >= 2 * 7 and source.stats["devices"]["split"]["failed"] == 0


async def test_broadcast_time_sync_sets_the_meters_clock_in_local_time(tmp_path: Path) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    meter = sim("000000000010")
    async with line(tmp_path, [meter]):
        source = Dlt645Source(bus(tmp_path, time_sync=True), [meter_device("t", "10")])
        sink = RecordingSink()
        async with running(source, sink):
            await until(lambda: bool(meter.clock_set) and source.time_syncs == 1)
            polled = len(sink.of("t", "energy_import"))
            await until(lambda: len(sink.of("t", "energy_import")) > polled)  # polling goes on beside it
    local = datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
    assert len(meter.clock_set) == 1 and abs((meter.clock_set[0] - local).total_seconds()) < 5
