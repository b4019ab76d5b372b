"""Evidence images: the frame that decided an alarm, with the zone and the object drawn on it.

Staff who receive ``fire.lane_blocked`` on a phone must see at a glance which vehicle and which
lane; the platform keeps the JPEG as the alarm's evidence (traceable video evidence, 002
5.4.4.2 b)). The zone is outlined and lightly filled, the deciding box is thick red with its
label, score and track id, other boxes in the zone are thin yellow, and a caption carries the
camera, zone and the capture time in the estate's time zone (with its UTC offset, so a platform
in another zone still reads it right). Frames wider than ``max_width`` are scaled down first (a 4K
frame is not needed to recognise a car, and a 2 MB upload per alarm is).

People given in ``blur`` are blurred (``edge.vision.privacy``) before anything is drawn, so the
labels and boxes stay sharp while faces do not. ``render_copies`` renders what the estate's privacy
policy (``edge.config.privacy.EvidenceBlur``) asks for: one picture when the uploaded and the local
copy are alike, two when they differ (typically: blurred for the platform, unblurred for staff on
the box). Both carry the same caption in the estate's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import cache
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.config.privacy import EvidenceBlur
from edge.messages import term
from edge.vision.detections import Box
from edge.vision.privacy import blur_people
from edge.vision.zones import Zone

RED = (0, 0, 255)
YELLOW = (0, 215, 255)
ZONE_COLOURS = {"fire_lane": (0, 64, 255), "ebike_entry": (255, 128, 0)}


def render_evidence(
    frame: NDArray[np.uint8],
    zone: Zone,
    box: Box | None,
    others: tuple[Box, ...],
    caption: str,
    ts: datetime,
    *,
    quality: int = 85,
    max_width: int = 1280,
    blur: tuple[Box, ...] = (),
    tz: tzinfo = UTC,
) -> bytes:
    """JPEG bytes of ``frame`` annotated with ``zone``, ``box`` and ``others``, people in ``blur`` blurred.

    Raises ``RuntimeError`` if OpenCV cannot encode (it never should for a BGR uint8 frame).
    """
    h, w = frame.shape[:2]
    scale = min(1.0, max_width / w)
    # cast: OpenCV's stubs type images as MatLike (no dtype); resizing a uint8 frame gives uint8
    image = cast("NDArray[np.uint8]", cv2.resize(frame, (round(w * scale), round(h * scale)))) if scale < 1.0 else frame.copy()
    blur_people(image, blur, scale)
    colour = ZONE_COLOURS.get(zone.kind, YELLOW)
    pts = np.round(zone.polygon * scale).astype(np.int32)
    overlay = image.copy()
    cv2.fillPoly(overlay, [pts], colour)
    cv2.addWeighted(overlay, 0.25, image, 0.75, 0, dst=image)
    cv2.polylines(image, [pts], True, colour, 2, cv2.LINE_AA)
    if zone.entry_line is not None:
        a = tuple(round(v * scale) for v in zone.entry_line.a)
        b = tuple(round(v * scale) for v in zone.entry_line.b)
        cv2.line(image, a, b, (255, 255, 255), 2, cv2.LINE_AA)
    thick = max(2, round(3 * image.shape[1] / 1280))
    for other in others:
        if box is not None and other.track_id == box.track_id:
            continue
        _draw_box(image, other, scale, YELLOW, 1)
    if box is not None:
        _draw_box(image, box, scale, RED, thick)
    text = f"{caption}  {caption_time(ts, tz)}"
    size = max(14, round(image.shape[1] / 55))
    _label(image, text, (4, 4), size, fg=(255, 255, 255), bg=(0, 0, 0))
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV failed to encode the evidence JPEG")
    return buf.tobytes()


@dataclass(frozen=True, slots=True)
class EvidenceImages:
    """One evidence picture's copies: ``upload`` leaves the box, ``local`` is what the panel shows.

    ``local`` is ``None`` when it would be the same picture (one file on disk, one render).
    """

    upload: bytes
    local: bytes | None = None


def render_copies(
    frame: NDArray[np.uint8],
    zone: Zone,
    box: Box | None,
    others: tuple[Box, ...],
    caption: str,
    ts: datetime,
    *,
    policy: EvidenceBlur,
    people: tuple[Box, ...],
    quality: int = 85,
    max_width: int = 1280,
    tz: tzinfo = UTC,
) -> EvidenceImages:
    """The copies ``policy`` asks for of one evidence picture, ``people`` blurred where it says so.

    The upload copy is rendered first and always; a second render happens only when the local
    copy's blurring differs (alarms are rare: the cost is one more JPEG encode per alarm).
    """
    def render(blur: bool) -> bytes:
        return render_evidence(frame, zone, box, others, caption, ts, quality=quality, max_width=max_width,
                               blur=people if blur else (), tz=tz)

    upload = render(policy.upload)
    if policy.local == policy.upload or not people:
        return EvidenceImages(upload)
    return EvidenceImages(upload, render(policy.local))


def caption_time(ts: datetime, tz: tzinfo) -> str:
    """``2025-06-01 16:00:00 UTC+08:00``: local time in ``tz`` with its offset (naive ``ts`` is UTC)."""
    local = (ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)).astimezone(tz)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} UTC{offset[:3]}:{offset[3:]}"


def _draw_box(image: NDArray[np.uint8], box: Box, scale: float, colour: tuple[int, int, int], thick: int) -> None:
    p1 = (round(box.x1 * scale), round(box.y1 * scale))
    p2 = (round(box.x2 * scale) - 1, round(box.y2 * scale) - 1)
    cv2.rectangle(image, p1, p2, colour, thick)
    # What staff call the object (a motorcycle box is an 电动车), its score and track for whoever checks.
    label = f"{term('class', box.label)} {box.score:.2f}" + (f" #{box.track_id}" if box.track_id is not None else "")
    size = max(12, round(image.shape[1] / 70))
    height = size + size // 3 + 4
    _label(image, label, (p1[0], max(p1[1] - height, 0)), size, fg=(0, 0, 0), bg=colour)


@cache
def _font() -> cv2.FontFace:
    """OpenCV's built-in Unicode font: Chinese zone names and words, with no font file to ship."""
    return cv2.FontFace("uni")


def _label(image: NDArray[np.uint8], text: str, top_left: tuple[int, int], size: int,
           fg: tuple[int, int, int], bg: tuple[int, int, int]) -> None:
    """``text`` at ``top_left`` on a filled background, ``size`` pixels high (Hershey fonts have no CJK)."""
    x, y = top_left
    baseline = y + size + 2
    rect = cv2.getTextSize((image.shape[1], image.shape[0]), text, (x + 4, baseline), _font(), size)
    right = min(rect[0] + rect[2] + 4, image.shape[1])
    cv2.rectangle(image, (x, y), (right, baseline + size // 3 + 2), bg, -1)
    cv2.putText(image, text, (x + 4, baseline), fg, _font(), size)
