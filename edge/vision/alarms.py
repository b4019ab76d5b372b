"""How the vision analytics' events become alarms in the shared rule engine.

The camera source emits decisions as events (see ``edge.vision.camera``):

* ``fire.lane_blocked`` / ``fire.lane_cleared`` carry ``data.lane`` (camera/zone) and
  ``data.active``: one alarm per blocked lane, raised once, cleared by the matching event.
* ``fire.ebike_entry`` carries ``data.entry`` (camera/zone/track): every entry is its own alarm,
  raised once; it stays open until staff resolve it (an entry is an incident, nothing "clears" it).
* ``camera.frozen`` / ``camera.covered`` and their ``*_cleared`` twins carry ``data.active`` too.
"""

from __future__ import annotations

from edge.records import Severity
from edge.rules import EventAlarmSpec


def _on_off(on_code: str, off_code: str, alarm_code: str, subject_key: str, severity: Severity) -> tuple[EventAlarmSpec, ...]:
    """The event that raises an alarm and its twin that clears it (``data.active`` tells which)."""
    return tuple(EventAlarmSpec(code, alarm_code, subject_key=subject_key, active_key="active", severity=severity)
                 for code in (on_code, off_code))


VISION_EVENT_ALARMS: tuple[EventAlarmSpec, ...] = (
    *_on_off("fire.lane_blocked", "fire.lane_cleared", "fire.lane_blocked", "lane", Severity.MAJOR),
    EventAlarmSpec("fire.ebike_entry", "fire.ebike_entry", subject_key="entry", active_key="active",
                   severity=Severity.MAJOR),
    *_on_off("camera.frozen", "camera.frozen_cleared", "camera.frozen", "camera", Severity.WARNING),
    *_on_off("camera.covered", "camera.covered_cleared", "camera.covered", "camera", Severity.WARNING),
)
