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

from datetime import datetime

from edge.records import DeviceStatus

# A camera "answers a poll" when a health check finds its stream delivering frames. The health
# readings that exist only then (``frozen`` and ``covered``, see ``edge.vision.source``) are its
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
