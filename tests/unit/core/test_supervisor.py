"""A crashing source is restarted with backoff; the others never notice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from edge.records import DeviceStatus, Event, Reading
from edge.supervisor import Supervisor
from tests.helpers.waiting import eventually


class RecordingSink:
    def __init__(self) -> None:
        self.got: list[Reading] = []

    async def readings(self, readings: Sequence[Reading]) -> None:  # type: ignore[override]
        self.got.extend(readings)

    async def events(self, events: Sequence[Event]) -> None:
        pass

    async def device_status(self, status: DeviceStatus) -> None:
        pass


class TickingSource:
    def __init__(self, name: str, period: float = 0.01, crash_every: int = 0, fingerprint: str = "v1") -> None:
        self._name = name
        self.period = period
        self.crash_every = crash_every
        self._fingerprint = fingerprint
        self.starts = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    async def run(self, sink: RecordingSink) -> None:  # type: ignore[override]
        self.starts += 1
        n = 0
        while True:
            n += 1
            await sink.readings([Reading(self._name, "tick", float(n), "1", datetime.now(UTC))])
            if self.crash_every and n % self.crash_every == 0:
                raise RuntimeError(f"{self._name} lost its bus")
            await asyncio.sleep(self.period)


async def test_crashing_source_is_isolated_and_restarted_with_backoff() -> None:
    sink = RecordingSink()
    healthy = TickingSource("healthy")
    flaky = TickingSource("flaky", crash_every=3)
    async with Supervisor(sink, restart_initial_s=0.05, restart_max_s=0.2) as sup:
        await sup.reconcile([healthy, flaky])
        await eventually(lambda: sup.sources["flaky"].restarts >= 2 and flaky.starts >= 3
                         and sum(1 for r in sink.got if r.device_id == "healthy") > 20,
                         what="two restarts of the flaky source beside 20 healthy ticks")
        status = sup.sources["flaky"]
        assert status.restarts >= 2
        assert status.last_error == "RuntimeError: flaky lost its bus"
        assert sup.sources["healthy"].restarts == 0
    assert flaky.starts >= 3
    assert healthy.starts == 1
    healthy_ticks = [r.value for r in sink.got if r.device_id == "healthy"]
    # The healthy source kept ticking at its own pace throughout (about 60 ticks in 0.6 s).
    assert len(healthy_ticks) > 20
    assert healthy_ticks == sorted(healthy_ticks)


async def test_backoff_grows_between_restarts() -> None:
    sink = RecordingSink()
    flaky = TickingSource("flaky", crash_every=1)
    async with Supervisor(sink, restart_initial_s=0.05, restart_max_s=10) as sup:
        await sup.reconcile([flaky])
        await asyncio.sleep(0.5)  # how many restarts fit in 0.5 s is what is tested (backoff growth)
        # 0.05 + 0.1 + 0.2 = 0.35 s for three restarts; a fourth would need 0.75 s in total.
        assert 2 <= sup.sources["flaky"].restarts <= 4


async def test_reconcile_restarts_only_what_changed() -> None:
    sink = RecordingSink()
    a, b = TickingSource("a"), TickingSource("b")
    async with Supervisor(sink) as sup:
        await sup.reconcile([a, b])
        await asyncio.sleep(0.05)
        b2, c = TickingSource("b", fingerprint="v2"), TickingSource("c")
        changes = await sup.reconcile([a, b2, c])
        assert changes["unchanged"] == ["a"]
        assert changes["restarted"] == ["b"]
        assert changes["started"] == ["c"]
        changes = await sup.reconcile([b2])
        assert sorted(changes["stopped"]) == ["a", "c"]
        assert set(sup.sources) == {"b"}
    assert a.starts == 1


class SwallowsOneStop(TickingSource):
    """A source whose library spends the first cancellation meant for it (as asyncua's clean-up does, or
    ``asyncio.wait_for`` on Python 3.11 when a wake-up meets the stop) and then goes on waiting."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.swallowed = 0

    async def run(self, sink: RecordingSink) -> None:  # type: ignore[override]
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if self.swallowed:
                    raise
                self.swallowed += 1
                asyncio.current_task().uncancel()  # type: ignore[union-attr]  (as if it never came)


@pytest.mark.parametrize("how", ["stop_all", "reconcile"])
async def test_a_source_that_swallows_its_stop_is_named_and_stopped_again(caplog, how: str) -> None:
    """Before, the supervisor waited for ever, and the daemon's shutdown (or a reload) hung with it."""
    sink, stuck, healthy = RecordingSink(), SwallowsOneStop("stuck"), TickingSource("healthy")
    sup = Supervisor(sink, stop_grace_s=0.05)
    await sup.reconcile([stuck, healthy])
    await eventually(lambda: len(sink.got) >= 3, what="the healthy source ticking")
    with caplog.at_level("WARNING", logger="edge.supervisor"):
        async with asyncio.timeout(5):
            if how == "stop_all":
                await sup.stop_all()
            else:
                await sup.reconcile([healthy])
    assert stuck.swallowed == 1 and "stuck" not in sup.sources
    warned = [r.getMessage() for r in caplog.records if "still running" in r.getMessage()]
    assert len(warned) == 1 and "stuck" in warned[0], warned
    await sup.stop_all()
