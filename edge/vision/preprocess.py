"""Letterbox a frame (or a region of it) into a model's input tensor, and map boxes back.

The model sees a fixed ``width x height`` input. The frame is resized keeping its aspect ratio,
pasted at the card's anchor (YOLOX: top-left) and the rest padded with the card's grey. A region of
interest is cropped first, so a small, distant vehicle fills more of the 416 px input; boxes are
mapped back to full-frame pixels with ``LetterboxTransform.to_frame``.

Cost on one core: about 0.5 ms for a 768x432 frame into 416x416 (one bilinear ``cv2.resize``
straight into a reused buffer, one transpose-and-convert). The buffer is per ``Letterboxer`` and not thread-safe: use one
letterboxer per thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from models.registry import InputSpec


@dataclass(frozen=True, slots=True)
class Region:
    """A rectangle in frame pixels (x1, y1 inclusive; x2, y2 exclusive)."""

    x1: int
    y1: int
    x2: int
    y2: int

    @property
    def width(self) -> int:
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        return self.y2 - self.y1

    def clipped(self, frame_width: int, frame_height: int) -> Region:
        x1 = min(max(self.x1, 0), frame_width - 1)
        y1 = min(max(self.y1, 0), frame_height - 1)
        x2 = min(max(self.x2, x1 + 1), frame_width)
        y2 = min(max(self.y2, y1 + 1), frame_height)
        return Region(x1, y1, x2, y2)


@dataclass(frozen=True, slots=True)
class LetterboxTransform:
    """How model-input pixels relate to frame pixels: frame = (model - pad) / scale + origin."""

    scale: float
    pad_x: float
    pad_y: float
    origin_x: float
    origin_y: float
    limit_x: float  # boxes are clipped to the cropped region in frame pixels
    limit_y: float

    def to_frame(self, boxes: NDArray[np.float32]) -> NDArray[np.float32]:
        """Map (N, 4) xyxy boxes from model-input pixels to frame pixels, clipped to the region."""
        out = boxes.copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale + self.origin_x
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale + self.origin_y
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], self.origin_x, self.limit_x)
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], self.origin_y, self.limit_y)
        return out


class Letterboxer:
    """Turns BGR uint8 frames into the float32 NCHW tensor a card describes."""

    def __init__(self, spec: InputSpec) -> None:
        self._spec = spec
        self._canvas = np.full((spec.height, spec.width, 3), spec.letterbox.pad_value, np.uint8)
        self._placed: tuple[int, int, int, int] | None = None
        mean = np.asarray(spec.mean, np.float32).reshape(3, 1, 1)
        std = np.asarray(spec.std, np.float32).reshape(3, 1, 1)
        self._mean = mean
        self._inv_std = 1.0 / std

    def __call__(
        self, frame: NDArray[np.uint8], region: Region | None = None
    ) -> tuple[NDArray[np.float32], LetterboxTransform]:
        spec = self._spec
        fh, fw = frame.shape[:2]
        roi = (region or Region(0, 0, fw, fh)).clipped(fw, fh)
        crop = frame[roi.y1 : roi.y2, roi.x1 : roi.x2]
        scale = min(spec.width / roi.width, spec.height / roi.height)
        new_w = max(1, min(spec.width, round(roi.width * scale)))
        new_h = max(1, min(spec.height, round(roi.height * scale)))
        if spec.letterbox.anchor == "center":
            pad_x, pad_y = (spec.width - new_w) // 2, (spec.height - new_h) // 2
        else:
            pad_x, pad_y = 0, 0
        canvas = self._canvas
        if self._placed != (pad_x, pad_y, new_w, new_h):
            canvas[...] = spec.letterbox.pad_value  # only when the geometry changes: the rest is overwritten
            self._placed = (pad_x, pad_y, new_w, new_h)
        # Bilinear, as YOLOX's own preprocessing does (INTER_AREA would cost 8x more for nothing the
        # model was trained to see); written straight into the canvas, no intermediate copy.
        cv2.resize(crop, (new_w, new_h), dst=canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w],
                   interpolation=cv2.INTER_LINEAR)
        if spec.colour_order == "rgb":
            image = canvas[:, :, ::-1]
        else:
            image = canvas
        tensor = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
        if not spec.is_identity_normalisation:
            tensor *= spec.scale
            tensor -= self._mean
            tensor *= self._inv_std
        transform = LetterboxTransform(
            scale=scale,
            pad_x=float(pad_x),
            pad_y=float(pad_y),
            origin_x=float(roi.x1),
            origin_y=float(roi.y1),
            limit_x=float(roi.x2),
            limit_y=float(roi.y2),
        )
        return tensor[None], transform
