"""Zone geometry: polygons in image pixels, anchor points of boxes, and directed entry lines.

All tests are vectorised over N boxes at once. Point-in-polygon uses the crossing-number rule
(a horizontal ray from the point crosses the boundary an odd number of times), evaluated for all
N points against all K edges as one (N, K) array; a point exactly on an edge may fall either way,
which is harmless at pixel scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.config.cameras import ZoneConfig
from edge.vision.preprocess import Region

FloatArray = NDArray[np.float32]


def anchors(boxes: FloatArray, anchor: str) -> FloatArray:
    """(N, 2) anchor points of (N, 4) xyxy boxes: bottom-centre (ground footprint) or centre."""
    x = (boxes[:, 0] + boxes[:, 2]) * 0.5
    y = boxes[:, 3] if anchor == "bottom_center" else (boxes[:, 1] + boxes[:, 3]) * 0.5
    return np.stack([x, y], axis=1).astype(np.float32)


def points_in_polygon(points: FloatArray, polygon: FloatArray) -> NDArray[np.bool_]:
    """Which of the (N, 2) ``points`` lie inside ``polygon`` (K, 2)."""
    if points.shape[0] == 0:
        return np.zeros((0,), bool)
    x = points[:, 0:1]
    y = points[:, 1:2]
    x1, y1 = polygon[:, 0][None, :], polygon[:, 1][None, :]
    x2, y2 = np.roll(polygon[:, 0], -1)[None, :], np.roll(polygon[:, 1], -1)[None, :]
    straddles = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    crossings = straddles & (x < x_cross)
    inside: NDArray[np.bool_] = (crossings.sum(axis=1) % 2).astype(bool)
    return inside


def _cross(o: NDArray[np.float64], a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Z of (a - o) x (b - o), row-wise; positive when b is left of o->a (y down: clockwise)."""
    return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (b[..., 0] - o[..., 0])


@dataclass(frozen=True, slots=True)
class EntryLine:
    """A segment a->b with an inward side (the side of the zone's centroid)."""

    a: tuple[float, float]
    b: tuple[float, float]
    inward_sign: float

    def side(self, points: FloatArray) -> NDArray[np.int8]:
        """+1 inward, -1 outward, 0 exactly on the line, for (N, 2) points."""
        a = np.asarray(self.a, np.float64)
        b = np.asarray(self.b, np.float64)
        z = _cross(a[None, :], b[None, :], points.astype(np.float64))
        return (np.sign(z) * self.inward_sign).astype(np.int8)

    def crossed_inward(self, before: tuple[float, float], after: tuple[float, float]) -> bool:
        """True when the move before->after crosses the segment from the outward to the inward side.

        A start exactly on the line counts as outward (an object stepping off the line inwards has
        entered; the same track cannot count twice anyway).
        """
        pts = np.asarray([before, after], np.float32)
        s_before, s_after = self.side(pts)
        if not (s_before <= 0 < s_after):
            return False
        a = np.asarray(self.a, np.float64)
        b = np.asarray(self.b, np.float64)
        p = np.asarray(before, np.float64)
        q = np.asarray(after, np.float64)
        # The movement segment must straddle the line's supporting line AND the line segment must
        # straddle the movement's: the crossing point lies within both segments.
        d1 = _cross(p, q, a)
        d2 = _cross(p, q, b)
        return bool(d1 * d2 <= 0)


@dataclass(frozen=True)
class Zone:
    """A compiled ``ZoneConfig``: NumPy polygon, anchor rule and optional entry line."""

    id: str
    kind: str
    name: str
    polygon: FloatArray
    anchor: str
    entry_line: EntryLine | None
    class_ids: tuple[int, ...]
    dwell_s: float | None

    @classmethod
    def from_config(cls, cfg: ZoneConfig, class_ids: tuple[int, ...]) -> Zone:
        polygon = np.asarray(cfg.polygon, np.float32)
        line = None
        if cfg.entry_line is not None:
            a, b = cfg.entry_line
            centroid = polygon.mean(axis=0).astype(np.float64)
            z = float(_cross(np.asarray(a, np.float64), np.asarray(b, np.float64), centroid))
            if z == 0:
                raise ValueError(f"zone {cfg.id}: the entry line passes through the zone's centroid")
            line = EntryLine(a, b, 1.0 if z > 0 else -1.0)  # the config validated both as (x, y) tuples
        return cls(cfg.id, cfg.kind, cfg.name or cfg.id, polygon, cfg.anchor, line, class_ids, cfg.dwell_s)

    def scaled(self, sx: float, sy: float) -> Zone:
        """This zone on a picture scaled by ``sx`` x ``sy``.

        Zones are drawn on the main stream and analysed on a sub-stream; positive scales keep the entry
        line's inward side.
        """
        factor = np.asarray([sx, sy], np.float32)
        line = None
        if self.entry_line is not None:
            a, b = self.entry_line.a, self.entry_line.b
            line = EntryLine((a[0] * sx, a[1] * sy), (b[0] * sx, b[1] * sy), self.entry_line.inward_sign)
        return Zone(self.id, self.kind, self.name, self.polygon * factor, self.anchor, line, self.class_ids,
                    self.dwell_s)

    def anchor_points(self, boxes: FloatArray) -> FloatArray:
        return anchors(boxes, self.anchor)

    def contains_boxes(self, boxes: FloatArray) -> NDArray[np.bool_]:
        return points_in_polygon(self.anchor_points(boxes), self.polygon)

    def bounds(self) -> tuple[float, float, float, float]:
        xs, ys = self.polygon[:, 0], self.polygon[:, 1]
        return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())

    def mask(self, width: int, height: int, scale: float = 1.0) -> NDArray[np.uint8]:
        """A filled 0/255 mask of the polygon on a ``width`` x ``height`` image scaled by ``scale``."""
        canvas = np.zeros((height, width), np.uint8)
        pts = np.round(self.polygon * scale).astype(np.int32)
        cv2.fillPoly(canvas, [pts], 255)
        return canvas


def zones_region(zones: list[Zone], margin: float, width: int, height: int) -> Region:
    """The bounding box of all zones, grown by ``margin`` (a fraction of its size), clipped to the frame.

    Boxes are tested by their anchor point, so an object whose footprint is in a zone can reach far
    above it (a truck's roof); the crop therefore grows upwards by at least the zones' height.
    """
    x1 = min(z.bounds()[0] for z in zones)
    y1 = min(z.bounds()[1] for z in zones)
    x2 = max(z.bounds()[2] for z in zones)
    y2 = max(z.bounds()[3] for z in zones)
    w, h = x2 - x1, y2 - y1
    region = Region(
        int(x1 - margin * w), int(y1 - max(margin, 1.0) * h), int(np.ceil(x2 + margin * w)),
        int(np.ceil(y2 + margin * h)),
    )
    return region.clipped(width, height)
