"""The one offline/online contract every source follows (Modbus lines, cameras, MQTT, meters, ...).

A source reports each *attempt* to reach a device: a poll, a health check of a camera's stream, a
heartbeat window of an MQTT device. The rule engine alone decides when a device is offline
(``thresholds.offline_after_failures`` failed attempts in a row) and online again
(``online_after_successes``), so every kind of source raises ``device.offline`` by the same rule
and a source cannot make the alarm flap or stay silent by reporting differently.

What a source must send, and what ``AvailabilityReporter`` decides for it:

* every failed attempt: ``DeviceStatus(online=False)`` (so N failures are N reports);
* successful attempts until ``online_after`` of them in a row were reported (enough for the
  engine's recovery rule), then nothing while the device stays healthy (no status per poll).

A source that reported only *changes* (offline once per outage) never raised the alarm: the engine
waited for three failures that never came. That was a camera's dead stream (issue 10 defect 3).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Protocol, TypeVar

from edge.clock import Clock
from edge.records import DeviceStatus

log = logging.getLogger(__name__)

# A camera "answers a poll" when a health check finds its stream delivering frames. The health
# readings that exist only then (``frozen`` and ``covered``, see ``edge.vision.camera``) are its
# presence for the availability indicators (device.online_rate, data.completeness); the others
# (``stream_alive`` = 0, ``frame_age_s``) are also sent while the stream is dead.
CAMERA_PRESENCE_POINTS = frozenset({"frozen", "covered"})


class AvailabilityReporter:
    """Per-device bookkeeping of what to report; the caller hands the result to ``Sink.device_status``."""

    __slots__ = ("device_id", "link", "online_after", "reported_ok")

    def __init__(self, device_id: str, online_after: int = 2, link: str | None = None) -> None:
        self.device_id = device_id
        self.online_after = online_after
        self.link = link  # shared by the devices behind one connection: one link alarm instead of N (rules)
        self.reported_ok = 0

    def failed(self, ts: datetime, error: str | None) -> DeviceStatus:
        """A failed attempt: always reported."""
        self.reported_ok = 0
        return DeviceStatus(self.device_id, False, ts, error=error, link=self.link)

    def succeeded(self, ts: datetime) -> DeviceStatus | None:
        """A successful attempt: reported until ``online_after`` in a row were, else ``None``."""
        if self.reported_ok >= self.online_after:
            return None
        self.reported_ok += 1
        return DeviceStatus(self.device_id, True, ts, link=self.link)


class DeviceAvailability(AvailabilityReporter):
    """A device's online state as its source sees it.

    The reporter's rule plus the state itself, and a log line only when the state changes (``failed`` /
    ``recovered``), never per poll or message.

    The push sources (MQTT, BLE, OPC-UA) hear from a device when it chooses to speak, so they keep
    this per device and call ``up`` on every message / advertisement / successful read and ``down``
    on every failure they see (a silence past the limit, a last will, a lost session). ``online`` is
    ``None`` until the first of either.
    """

    __slots__ = ("online", "source")

    def __init__(self, device_id: str, source: str, online_after: int = 2, link: str | None = None) -> None:
        super().__init__(device_id, online_after, link)
        self.source = source  # the source's name, for the log lines
        self.online: bool | None = None

    def up(self, ts: datetime) -> DeviceStatus | None:
        """The device answered: online. Returns what to report (``AvailabilityReporter.succeeded``)."""
        if self.online is not True:
            if self.online is False:
                log.info("%s: %s online again", self.source, self.device_id)
            self.online = True
        return self.succeeded(ts)

    def down(self, ts: datetime, error: str) -> DeviceStatus:
        """The device did not answer (``error`` says how): offline. Always reported."""
        if self.online is not False:
            log.warning("%s: %s offline: %s", self.source, self.device_id, error)
        self.online = False
        return self.failed(ts, error)


class Heard(Protocol):
    """A device of a push source, as ``watch_silence`` sees it."""

    @property
    def availability(self) -> DeviceAvailability: ...

    @property
    def last_seen(self) -> float: ...  # clock.monotonic() of the last message / advertisement

    @property
    def offline_after_s(self) -> float: ...


H = TypeVar("H", bound=Heard)


async def watch_silence(clock: Clock, devices: Collection[H], on_silent: Callable[[H, float], None]) -> None:
    """Call ``on_silent(device, seconds)`` for each device silent past its ``offline_after_s``, until cancelled.

    Devices already offline are skipped.

    Checked a few times per the shortest limit (at most once a second, at least every 20 ms), so a
    device is declared offline within a quarter of its limit after it passed, without a timer per
    device. ``on_silent`` normally calls ``availability.down``, which makes the device offline, so
    one silence is reported once; it comes back with its next message.
    """
    shortest = min((d.offline_after_s for d in devices), default=60.0)
    interval = max(0.02, min(1.0, shortest / 4))
    while True:
        await asyncio.sleep(interval)
        mono = clock.monotonic()
        for device in devices:
            silent = mono - device.last_seen
            if device.availability.online is not False and silent > device.offline_after_s:
                on_silent(device, silent)
