"""What the zone analytics decide, and how a decision is worded for staff.

``Decision`` is the record the monitors (``fire_lane``, ``ebike``) return and the camera source
turns into events. Its words come from the message catalogue (``edge.messages``), in the estate's
language, through ``decision_text``: the event, the evidence caption and the tests read the same
sentence, and what is parked is named by the catalogue's class terms (a ``motorcycle`` box is an
电动车 to staff); the technical detail (class label, score, boxes, dwell) travels in ``data``.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.messages import MessageFields, say
from edge.vision.detections import Box

LANE_BLOCKED = "fire.lane_blocked"
LANE_CLEARED = "fire.lane_cleared"
EBIKE_ENTRY = "fire.ebike_entry"

@dataclass(frozen=True, slots=True)
class Decision:
    """What an analytic decided on one frame. ``box`` is the object that caused it (if any)."""

    code: str
    zone_id: str
    zone_name: str
    t: float
    track_id: int | None
    box: Box | None
    boxes: tuple[Box, ...]
    dwell_s: float | None = None
    blocked_s: float | None = None

    @property
    def message(self) -> str:
        """The decision in the estate's language (``decision_text``)."""
        return decision_text(self)["message"]


def decision_text(decision: Decision, camera_id: str = "") -> MessageFields:
    """The catalogue's words for ``decision`` (message, code and params for the record)."""
    zone = decision.zone_name or decision.zone_id
    # Literal codes: the catalogue test finds every say() call by its code.
    if decision.code == EBIKE_ENTRY:
        return say("fire.ebike_entry", camera=camera_id, zone=zone)
    if decision.code == LANE_CLEARED:
        return say("fire.lane_cleared", camera=camera_id, zone=zone, blocked_s=round(decision.blocked_s or 0))
    what = decision.box.label if decision.box is not None else "vehicle"  # a class term: 电动车, 小汽车, ...
    return say("fire.lane_blocked", camera=camera_id, zone=zone, object=what, dwell_s=round(decision.dwell_s or 0))
