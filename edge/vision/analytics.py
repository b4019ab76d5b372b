"""Zone analytics as pure, clock-injected state machines: tracks in, raise/clear decisions out.

They take the tracker's live tracks and the frame's monotonic time and return ``Decision``s; they
never read a clock, draw, or do I/O, so tests drive them with scripted tracks and times, and the
camera source turns decisions into events. One module per analytic:

* ``edge.vision.fire_lane``: ``FireLaneMonitor``, blocking by zone *occupancy* (a spot stays
  occupied through missed frames, passing traffic, merged boxes and tracker id switches);
* ``edge.vision.ebike``: ``EbikeEntryMonitor``, entries confirmed by a short class vote, with
  residents, pedal bicycles and hard negatives kept out.

This module is the stable import point for both and for the ``Decision`` record.
"""

from __future__ import annotations

from edge.vision.decisions import EBIKE_ENTRY, LANE_BLOCKED, LANE_CLEARED, Decision, decision_text
from edge.vision.ebike import EbikeClasses, EbikeEntryMonitor
from edge.vision.fire_lane import FireLaneMonitor, Occupant

__all__ = [
    "EBIKE_ENTRY", "LANE_BLOCKED", "LANE_CLEARED", "Decision", "EbikeClasses", "EbikeEntryMonitor",
    "FireLaneMonitor", "Occupant", "decision_text",
]
