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
"""

from __future__ import annotations

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
    """Implements ``Sink``. Thread-of-control: the calling source's task (back-pressure by design)."""

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

    def observe_readings(self, observer: ReadingObserver) -> None:
        self._reading_observers.append(observer)

    def observe_status(self, observer: StatusObserver) -> None:
        self._status_observers.append(observer)

    async def readings(self, readings: Sequence[Reading]) -> None:
        if not readings:
            return
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
