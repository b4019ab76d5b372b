"""What the zone analytics decide, and how an object is named to staff.

``Decision`` is the record the monitors (``fire_lane``, ``ebike``) return and the camera source
turns into events. Messages are for staff, so they are Chinese (the product's default language);
the technical detail (class label, score, boxes, dwell) travels in the event's ``data``.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.vision.detections import Box

LANE_BLOCKED = "fire.lane_blocked"
LANE_CLEARED = "fire.lane_cleared"
EBIKE_ENTRY = "fire.ebike_entry"

# Chinese names of the classes staff meet in alarms (COCO names and the site classes of issue 11).
LABELS_ZH = {
    "car": "小汽车",
    "truck": "货车",
    "van": "面包车",
    "bus": "客车",
    "motorcycle": "摩托车/电动车",
    "bicycle": "自行车",
    "e-bike": "电动车",
    "ebike": "电动车",
    "electric moped": "电动车",
    "person": "行人",
}


def label_zh(label: str) -> str:
    """The Chinese name of a class label; unknown labels (a site model's own) are shown as they are."""
    return LABELS_ZH.get(label.lower().replace("_", " "), label)


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
    message: str = ""
