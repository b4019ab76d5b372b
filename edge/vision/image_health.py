"""Is the picture itself healthy? Frozen (identical frames) and covered (no structure) detection.

Both work on the gate's small grey image, so they cost a subtraction and a standard deviation.

- *Frozen*: a camera whose encoder hangs, or a hijacked stream looping a still, keeps sending the
  same picture. Live sensors always add noise, so consecutive frames of even a static scene
  differ by a fraction of a grey level; a mean absolute difference below ``frozen_max_diff`` for
  ``frozen_after_s`` means frozen.
- *Covered*: a lens that is taped, sprayed or pointed at a wall shows almost no structure. A
  grey-level standard deviation below ``covered_max_std`` for ``covered_after_s`` means covered. A
  pitch-dark scene at night without IR reads the same; that is deliberate (the camera is not
  seeing anything either way).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.config.cameras import HealthConfig
from edge.vision.motion import GreyImage


@dataclass(frozen=True, slots=True)
class ImageHealthState:
    frozen: bool
    covered: bool
    diff: float  # mean absolute grey difference to the previous frame
    std: float  # grey-level standard deviation of this frame


class ImageHealthMonitor:
    def __init__(self, cfg: HealthConfig) -> None:
        self._cfg = cfg
        self._prev: GreyImage | None = None
        self._same_since: float | None = None
        self._flat_since: float | None = None
        self.state = ImageHealthState(False, False, 0.0, 0.0)

    def update(self, small: GreyImage, t: float) -> ImageHealthState:
        cfg = self._cfg
        std = float(small.std())
        if self._prev is not None and self._prev.shape == small.shape:
            diff = float(cv2.absdiff(small, self._prev).mean())
        else:
            diff = float("inf")
        self._prev = small
        if diff <= cfg.frozen_max_diff:
            self._same_since = t if self._same_since is None else self._same_since
        else:
            self._same_since = None
        if std <= cfg.covered_max_std:
            self._flat_since = t if self._flat_since is None else self._flat_since
        else:
            self._flat_since = None
        frozen = self._same_since is not None and t - self._same_since >= cfg.frozen_after_s
        covered = self._flat_since is not None and t - self._flat_since >= cfg.covered_after_s
        self.state = ImageHealthState(frozen, covered, diff if np.isfinite(diff) else -1.0, std)
        return self.state
