"""A ``Sink`` that records what a source delivers, in order: the stage boundary tests observe."""

from __future__ import annotations

from collections.abc import Sequence

from edge.records import DeviceStatus, Event, Reading


class RecordingSink:
    def __init__(self) -> None:
        self.readings_seen: list[Reading] = []
        self.events_seen: list[Event] = []
        self.statuses: list[DeviceStatus] = []
        self.calls = 0

    @property
    def seen(self) -> list[Reading]:
        return self.readings_seen

    async def readings(self, readings: Sequence[Reading]) -> None:
        self.calls += 1
        self.readings_seen.extend(readings)

    async def events(self, events: Sequence[Event]) -> None:
        self.events_seen.extend(events)

    async def device_status(self, status: DeviceStatus) -> None:
        self.statuses.append(status)

    def latest(self) -> dict[tuple[str, str], Reading]:
        return {(r.device_id, r.point): r for r in self.readings_seen}

    def of(self, device_id: str, point: str) -> list[Reading]:
        return [r for r in self.readings_seen if r.device_id == device_id and r.point == point]

    def event_codes(self, device_id: str | None = None) -> list[str]:
        return [e.code for e in self.events_seen if device_id is None or e.device_id == device_id]
