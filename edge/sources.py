"""The driver interface: what every protocol implements, and what it may call.

A *source* is one unit of acquisition work the supervisor runs as a named task: one Modbus bus,
one MQTT subscription, one camera. It reads devices and hands what it got to a ``Sink``; it never
touches the store or the uplink (data flows one way). The sink is the pipeline's ingress: it
normalises, stores, and feeds the alarm rules.

Failure contract: ``run`` runs until cancelled. A device that fails is reported through
``Sink.device_status`` and retried by the source itself with backoff; the source keeps serving its
other devices. An exception that escapes ``run`` means the whole source is broken; the supervisor
logs it and restarts the source with backoff, leaving every other source untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from edge.records import DeviceStatus, Event, Reading


@runtime_checkable
class Sink(Protocol):
    """Where sources deliver. Each call returns once the records are durably stored."""

    async def readings(self, readings: Sequence[Reading]) -> None: ...

    async def events(self, events: Sequence[Event]) -> None: ...

    async def device_status(self, status: DeviceStatus) -> None: ...


@runtime_checkable
class Source(Protocol):
    """One acquisition task (a bus, a broker subscription, a camera)."""

    @property
    def name(self) -> str:
        """Unique, stable task name, e.g. ``bus:b1-rs485``; used by the supervisor and in logs."""

    @property
    def fingerprint(self) -> str:
        """A digest of this source's configuration; on SIGHUP only sources whose fingerprint changed restart."""

    async def run(self, sink: Sink) -> None:
        """Acquire until cancelled."""


@dataclass(frozen=True, slots=True)
class CounterSpec:
    """What a driver knows about one counter point, for the normaliser's ``CounterTracker``.

    ``rollover`` is the register's modulus in the reading's canonical unit (a uint32 x 0.1 kWh
    register wraps at 2**32 x 0.1 kWh), so a wrap is booked as a rollover and not as a reset;
    ``max_rate_per_s`` is the fastest plausible growth (canonical unit per second), beyond which a
    jump is a meter swap, not consumption. ``None`` means unknown.
    """

    rollover: float | None = None
    max_rate_per_s: float | None = None

