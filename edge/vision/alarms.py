"""How the vision analytics' events become alarms in the shared rule engine.

The camera source emits decisions as events (see ``edge.vision.source``):

* ``fire.lane_blocked`` / ``fire.lane_cleared`` carry ``data.lane`` (camera/zone) and
  ``data.active``: one alarm per blocked lane, raised once, cleared by the matching event.
* ``fire.ebike_entry`` carries ``data.entry`` (camera/zone/track): every entry is its own alarm,
  raised once; it stays open until staff resolve it (an entry is an incident, nothing "clears" it).
* ``camera.frozen`` / ``camera.covered`` and their ``*_cleared`` twins carry ``data.active`` too.
"""

from __future__ import annotations

from edge.records import Severity
from edge.rules import EventAlarmSpec

VISION_EVENT_ALARMS: tuple[EventAlarmSpec, ...] = (
    EventAlarmSpec("fire.lane_blocked", "fire.lane_blocked", subject_key="lane", active_key="active",
                   severity=Severity.MAJOR),
    EventAlarmSpec("fire.lane_cleared", "fire.lane_blocked", subject_key="lane", active_key="active",
                   severity=Severity.MAJOR),
    EventAlarmSpec("fire.ebike_entry", "fire.ebike_entry", subject_key="entry", active_key="active",
                   severity=Severity.MAJOR),
    EventAlarmSpec("camera.frozen", "camera.frozen", subject_key="camera", active_key="active",
                   severity=Severity.WARNING),
    EventAlarmSpec("camera.frozen_cleared", "camera.frozen", subject_key="camera", active_key="active",
                   severity=Severity.WARNING),
    EventAlarmSpec("camera.covered", "camera.covered", subject_key="camera", active_key="active",
                   severity=Severity.WARNING),
    EventAlarmSpec("camera.covered_cleared", "camera.covered", subject_key="camera", active_key="active",
                   severity=Severity.WARNING),
)
