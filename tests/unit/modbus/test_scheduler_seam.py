"""The Modbus source on its seams: an in-memory link and the manual clock, no sockets and no wall time.

What the integration tests over real sockets can only bound ("at most 8 attempts in 4.2 s",
"lag under 0.1 s"), these pin exactly: the slot grid, one retry and then one attempt per backoff
step of 2, 4, 8 ... periods, the capped step, the healthy neighbour's zero lag, skipped cycles on
an overloaded lane and the overload raised and cleared once. Time moves only when the test jumps
the clock to the next sleeper, so a run of minutes takes milliseconds and never flakes under load.
The device is the one thing replaced (``MemoryLink`` answers from a register map, or stays silent
for its timeout on the same clock); the scheduler, pollers, decoding and hand-over are the real ones.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
from datetime import UTC, datetime

import pytest

from drivers.modbus.driver import ModbusSource
from edge.clock import ManualClock
from edge.config.buses import ModbusTcpBusConfig
from edge.errors import DeviceTimeout
from tests.helpers.sink import RecordingSink
from tests.helpers.sources import running
from tests.helpers.virtual_time import run_virtual
from tests.helpers.waiting import eventually
from tests.integration.modbus_support import device

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


class MemoryLink:
    """A converter in memory: answers FC4 reads from per-unit float32 values, after ``latency_s`` of
    the clock's time; a unit listed in ``silent`` never answers (its reads wait out their timeout)."""

    def __init__(self, clock: ManualClock, values: dict[int, dict[int, float]], *, silent: set[int],
                 latency_s: dict[int, float], log: list[tuple[float, int]]) -> None:
        self.name = "memory"
        self.transactions = 0
        self.retired = False
        self._clock, self._values, self._silent, self._latency, self._log = clock, values, silent, latency_s, log

    async def read(self, device_id: str, unit: int, function_code: int, address: int, count: int,
                   timeout: float, **_: object) -> bytes:
        self.transactions += 1
        if address == 0x0000:  # a poll's first block read: one entry per poll attempt
            self._log.append((self._clock.monotonic(), unit))
        if unit in self._silent:
            await self._clock.sleep(timeout)
            raise DeviceTimeout(device_id, f"no answer in {timeout} s", detail=f"unit {unit}")
        await self._clock.sleep(self._latency.get(unit, 0.0))
        words = bytearray(2 * count)
        for register, value in self._values.get(unit, {}).items():
            offset = 2 * (register - address)
            if 0 <= offset <= len(words) - 4:
                words[offset:offset + 4] = struct.pack(">f", value)
        return bytes(words)

    def close(self) -> None:
        self.retired = True


class MemorySource(ModbusSource):
    """The real source with its links made in memory (``new_link`` is the one place links are made)."""

    def __init__(self, *args: object, link: dict[str, object], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._link_args = link

    def new_link(self, endpoint: object) -> MemoryLink:  # type: ignore[override]
        return MemoryLink(**self._link_args)  # type: ignore[arg-type]




def bus(**kw: object) -> ModbusTcpBusConfig:
    return ModbusTcpBusConfig(kind="modbus_tcp", id="mem", host="127.0.0.1", port=502, **kw)  # type: ignore[arg-type]


def attempts(log: list[tuple[float, int]], unit: int) -> list[float]:
    """When a poll of ``unit`` started (its first block read), in order."""
    return [t for t, u in log if u == unit]


async def test_slots_backoff_steps_and_a_healthy_neighbour_exactly() -> None:
    clock = ManualClock(T0)
    log: list[tuple[float, int]] = []
    source = MemorySource(
        bus(max_connections=1, backoff_max_s=8.0),
        [device("live", "mem", "eastron_sdm120", 1, period=1.0, timeout=0.3, retries=1),
         device("dead", "mem", "eastron_sdm120", 2, period=1.0, timeout=0.3, retries=1)],
        clock=clock, link={"clock": clock, "values": {1: {0x0000: 230.5}}, "silent": {2}, "latency_s": {}, "log": log},
    )
    sink = RecordingSink()
    async with running(source, sink):
        await run_virtual(clock, 40.0)
    live, dead = attempts(log, 1), attempts(log, 2)
    # The live meter, on a 1 s grid, never moved by its dead neighbour by more than the dead one's
    # timeouts (one worker: the connection is shared).
    gaps = [b - a for a, b in itertools.pairwise(live)]
    assert len(live) >= 39 and all(0.4 <= g <= 1.6 for g in gaps), gaps
    stats = source.stats["devices"]
    assert stats["live"]["failed"] == 0 and stats["live"]["skipped_cycles"] == 0
    assert sink.latest()[("live", "voltage")].value == pytest.approx(230.5)
    # The dead meter: first poll with its one retry, then single attempts; after three failed polls the
    # next attempt comes 2, 4, 8, 8 ... periods after the last one timed out (capped at backoff_max_s = 8 s).
    starts = [dead[0], *(b for a, b in itertools.pairwise(dead) if b - a > 0.3 + 1e-9)]
    assert len(dead) == len(starts) + 1  # the one retry of the first poll
    spacing = [round(b - a, 6) for a, b in itertools.pairwise(starts)]
    assert spacing[:2] == [1.0, 1.0]  # polls 2 and 3: still on the grid, one attempt each
    assert spacing[2:5] == [0.3 + 2.0, 0.3 + 4.0, 0.3 + 8.0] and set(spacing[5:]) <= {0.3 + 8.0}, spacing
    assert stats["dead"]["online"] is False and stats["dead"]["backoff_s"] == 8.0
    offline = [s for s in sink.statuses if s.device_id == "dead" and not s.online]
    assert offline and all(not s.online for s in sink.statuses if s.device_id == "dead")


async def test_overloaded_lane_skips_late_cycles_and_reports_overload_once() -> None:
    clock = ManualClock(T0)
    log: list[tuple[float, int]] = []
    # Ten meters at 0.1 s on one connection, each answer taking 40 ms: 400 ms of work per 100 ms.
    source = MemorySource(
        bus(max_connections=1, overload_clear_s=0.6),
        [device(f"m{u}", "mem", "eastron_sdm120", u, period=0.1, timeout=0.5) for u in range(1, 11)],
        clock=clock, link={"clock": clock, "values": {}, "silent": set(),
                           "latency_s": dict.fromkeys(range(1, 11), 0.04), "log": log},
    )
    sink = RecordingSink()
    async with running(source, sink):
        await run_virtual(clock, 3.0)
        assert source.overloaded and source.skipped_cycles > 10
        links = source._lanes[0].links
        assert sum(link.transactions for link in links) == pytest.approx(3.0 / 0.04, abs=2)  # never idle
        source_links = {u: 0.0 for u in range(1, 11)}
        for link in links:  # the meters speed up: the lane keeps up again
            link._latency = source_links  # type: ignore[attr-defined]
        await run_virtual(clock, 3.0)
        assert not source.overloaded
        await eventually(lambda: sum(1 for e in sink.events_seen if e.code == "modbus.overload") == 2,
                         what="the overload raised and cleared")
    actives = [e.data["active"] for e in sink.events_seen if e.code == "modbus.overload"]
    assert actives == [True, False]
    # Late cycles were skipped, not run in a burst: a slot up to one period late is still polled, so two
    # polls may come close together, but never three within one period.
    for unit in range(1, 11):
        times = attempts(log, unit)
        assert all(c - a >= 0.1 - 1e-9 for a, c in zip(times, times[2:], strict=False)), (unit, times)
    assert max(d["lag_max_s"] for d in source.stats["devices"].values()) <= 0.1 + 1e-9


def test_manual_clock_wakes_sleepers_in_order() -> None:
    async def scenario() -> list[tuple[str, float]]:
        clock = ManualClock(T0)
        woke: list[tuple[str, float]] = []

        async def sleeper(name: str, seconds: float) -> None:
            await clock.sleep(seconds)
            woke.append((name, clock.monotonic()))

        tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("b", 2.0), ("a", 1.0), ("c", 2.0))]
        await asyncio.sleep(0)
        assert clock.sleeping == 3 and clock.next_wake() == 1.0
        clock.advance(0.5)
        await asyncio.sleep(0)
        assert woke == []
        assert clock.advance_to_next_wake() == 0.5
        await asyncio.sleep(0)
        clock.advance(5.0)
        await asyncio.gather(*tasks)
        return woke

    assert asyncio.run(scenario()) == [("a", 1.0), ("b", 6.0), ("c", 6.0)]
