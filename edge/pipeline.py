"""The ingress every source delivers to: normalise -> store -> (rules -> alarms) -> observers.

This is the one implementation of ``edge.sources.Sink``. Its stages are injected, each behind a
small protocol, so the daemon wires the real ones and tests wire what they exercise:

    normaliser   Sequence[Reading] -> Sequence[Reading]   canonical units, counter sanity, quality
    store        durable append; returns only after commit (the driver's back-pressure)
    rules        readings / device status / events -> alarm transitions (raise / clear)
    alarms       applies transitions: dedup by key, alarm records into the store, notifications
    observers    after commit, e.g. the panel's latest-value cache and chart rollups

Ordering matters: readings are committed *before* rules see them, so an alarm never refers to a
reading that a crash could lose.

Readings from many sources travel together: calls that arrive while the pipeline is busy (or in the
same turn of the event loop) are gathered and go through normaliser, store, rules and observers as
one batch, and every caller returns once that batch has. Ten converters' hand-overs then cost one
commit and one pass of each stage per round, not ten (group commit, one level up from the store's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from edge.records import DeviceStatus, Event, Reading
from edge.store import Store
from edge.transitions import AlarmTransition

log = logging.getLogger(__name__)


class Normaliser(Protocol):
    def normalise(self, readings: Sequence[Reading]) -> Sequence[Reading]: ...


class RuleEngine(Protocol):
    """Turns facts into alarm transitions; pure apart from its own condition state."""

    def on_readings(self, readings: Sequence[Reading]) -> Sequence[AlarmTransition]: ...

    def on_status(self, status: DeviceStatus) -> Sequence[AlarmTransition]: ...

    def on_events(self, events: Sequence[Event]) -> Sequence[AlarmTransition]: ...


class AlarmSink(Protocol):
    """Applies transitions: dedup by key, alarm records into the store (``edge.alarms.AlarmManager``)."""

    async def apply(self, transitions: Sequence[AlarmTransition]) -> object: ...


ReadingObserver = Callable[[Sequence[Reading]], Awaitable[None]]
StatusObserver = Callable[[DeviceStatus], Awaitable[None]]


class Pipeline:
    """Implements ``Sink``: one pass task for readings, the caller's task for statuses and events.

    Readings callers wait for the pass that carries their readings (back-pressure by design: a source
    goes on once its readings are committed).
    """

    def __init__(
        self,
        store: Store,
        *,
        normaliser: Normaliser | None = None,
        rules: RuleEngine | None = None,
        alarms: AlarmSink | None = None,
    ) -> None:
        self.store = store
        self.normaliser = normaliser
        self.rules = rules
        self.alarms = alarms
        self._reading_observers: list[ReadingObserver] = []
        self._status_observers: list[StatusObserver] = []
        self.readings_in = 0
        self.events_in = 0
        self.reading_batches = 0  # passes through the stages (calls gathered into one count once)
        self._gathered: list[tuple[Sequence[Reading], asyncio.Future[None]]] = []
        self._passes: asyncio.Task[None] | None = None

    def observe_readings(self, observer: ReadingObserver) -> None:
        self._reading_observers.append(observer)

    def observe_status(self, observer: StatusObserver) -> None:
        self._status_observers.append(observer)

    async def readings(self, readings: Sequence[Reading]) -> None:
        """Returns once ``readings`` are committed and the rules and observers have seen them.

        Raises what the store raised for the batch they travelled in (``StoreError``). A caller cancelled
        while waiting leaves its readings in the batch: like a queued store write, they go through.
        """
        if not readings:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._gathered.append((readings, done))
        if self._passes is None or self._passes.done():
            self._passes = asyncio.create_task(self._run_passes(), name="pipeline-readings")
        await done

    async def drain(self) -> None:
        """Wait until the readings handed in so far have finished their pass.

        For shutdown, before the store closes: a caller cancelled while waiting has left its readings in
        a pass that goes on.
        """
        while self._passes is not None and not self._passes.done():
            with contextlib.suppress(Exception):
                await self._passes

    async def _run_passes(self) -> None:
        """One pass per gathering of calls, until no call waits."""
        while self._gathered:
            gathered, self._gathered = self._gathered, []
            if len(gathered) == 1:
                batch = gathered[0][0]
            else:
                batch = [reading for readings, _ in gathered for reading in readings]
            try:
                await self._pass(batch)
            except Exception as exc:  # the store refused the batch: every caller in it hears so
                for _, done in gathered:
                    if not done.done():
                        done.set_exception(exc)
                continue
            except BaseException:  # cancelled (shutdown): nobody is left to wait
                for _, done in [*gathered, *self._gathered]:
                    done.cancel()
                self._gathered = []
                raise
            for _, done in gathered:
                if not done.done():
                    done.set_result(None)

    async def _pass(self, readings: Sequence[Reading]) -> None:
        self.reading_batches += 1
        anomalies: Sequence[Event] = ()
        if self.normaliser is not None:
            readings = self.normaliser.normalise(readings)
            drain = getattr(self.normaliser, "drain_events", None)
            anomalies = drain() if drain is not None else ()
        stored = await self.store.append_readings(readings)  # poll ids; none while the disk is full
        if anomalies:  # counter rollover / meter replacement / reset, recorded beside the readings
            await self.events(anomalies)
        if stored:
            self.readings_in += len(readings)
        if self.rules is not None:
            await self._apply(self.rules.on_readings(readings))
        for observer in self._reading_observers:
            await self._notify(observer, readings)

    async def events(self, events: Sequence[Event]) -> None:
        if not events:
            return
        await self.store.append_events(events)
        self.events_in += len(events)
        if self.rules is not None:
            await self._apply(self.rules.on_events(events))

    async def device_status(self, status: DeviceStatus) -> None:
        if self.rules is not None:
            await self._apply(self.rules.on_status(status))
        for observer in self._status_observers:
            await self._notify(observer, status)

    async def _apply(self, transitions: Sequence[AlarmTransition]) -> None:
        if transitions and self.alarms is not None:
            await self.alarms.apply(transitions)

    @staticmethod
    async def _notify(observer: Callable[[Any], Awaitable[None]], payload: Any) -> None:
        # An observer (panel cache) must never break acquisition; it is told, not trusted.
        try:
            await observer(payload)
        except Exception:
            log.exception("pipeline observer %r failed", observer)
