"""The hand-over between pollers and the sink: rounds of delivery at most one window apart.

A real event loop and a sink that takes a few milliseconds per call, as a store commit does; no
sockets. The bounds only ever loosen on a loaded machine (a slower sink makes fewer calls).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime

from drivers.modbus.handover import Handover
from edge.records import DeviceStatus, Event, Reading

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


class SlowSink:
    """Records every call; each ``readings`` call takes ``commit_s``, like a durable commit."""

    def __init__(self, commit_s: float) -> None:
        self.commit_s = commit_s
        self.calls: list[str] = []  # the kind of each call, in order
        self.batches: list[list[Reading]] = []  # what each ``readings`` call carried

    async def readings(self, readings: Sequence[Reading]) -> None:
        self.calls.append("readings")
        self.batches.append(list(readings))
        await asyncio.sleep(self.commit_s)

    async def events(self, events: Sequence[Event]) -> None:
        self.calls.append("events")

    async def device_status(self, status: DeviceStatus) -> None:
        self.calls.append("status")


def poll(device: str, k: int) -> list[Reading]:
    return [Reading(device, f"p{i}", float(k), "V", T0) for i in range(3)]


async def test_a_steady_stream_goes_in_one_call_per_window_not_one_per_commit() -> None:
    """Polls every millisecond, commits of 2 ms: before, every commit was followed at once by the next call
    (about 150 calls of one or two polls in 0.4 s); now the polls that come in during a window go together."""
    handover = Handover(batch_window_s=0.05)
    sink = SlowSink(commit_s=0.002)
    task = asyncio.create_task(handover.run(sink))
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent = 0
    while loop.time() - started < 0.4:
        handover.put_readings(poll(f"d{sent % 7}", sent))
        sent += 1
        await asyncio.sleep(0.001)
    elapsed = loop.time() - started
    await asyncio.sleep(0.12)  # the last window's delivery
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    calls = sink.batches
    assert len(calls) <= elapsed / 0.05 + 2, (len(calls), elapsed)
    delivered = [r for readings in calls for r in readings]
    assert len(delivered) == 3 * sent  # nothing lost or repeated, in order
    assert [r.value for r in delivered[::3]] == [float(k) for k in range(sent)]


async def test_statuses_and_events_keep_their_place_between_readings_in_a_round() -> None:
    handover = Handover(batch_window_s=0.02)
    sink = SlowSink(commit_s=0.001)
    status = DeviceStatus("d1", False, T0, "no answer")
    handover.put_readings(poll("d1", 1))
    handover.put_status(status)
    handover.put_readings(poll("d2", 2))
    handover.put_readings(poll("d3", 3))
    task = asyncio.create_task(handover.run(sink))
    while len(sink.calls) < 3:
        await asyncio.sleep(0.005)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert sink.calls == ["readings", "status", "readings"]
    assert [r.device_id for r in sink.batches[1]] == ["d2"] * 3 + ["d3"] * 3
