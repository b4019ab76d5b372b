"""Temporal sensor noise for simulated cameras: what makes a real camera's stream cost its decoding.

A real sensor adds fresh noise to every pixel of every frame (photon shot noise and read noise;
a few grey levels by day on a 1/2.8" estate camera, more at dusk). The encoder must spend bits on
it in every P-frame, and the decoder must parse and reconstruct them; a scene rendered from one
photo has none, so its P-frames are almost all skipped blocks and decode several times cheaper.

Generating Gaussian noise for a 720p frame at 15 fps would cost the simulator a core's fifth, so a
bank of ``BANK`` noise fields per picture size is drawn once and each frame takes one at a random
circular shift (rows and columns): consecutive frames never repeat a field, which is what defeats
the encoder's prediction, as real noise does. Applied with saturating uint8 adds (positive and
negative parts apart), about a millisecond per 720p frame.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

BANK = 8


class SensorNoise:
    """Adds zero-mean Gaussian noise of a given sigma (grey levels) to BGR uint8 frames."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)
        self._banks: dict[tuple[tuple[int, ...], float], list[tuple[NDArray[np.uint8], NDArray[np.uint8]]]] = {}

    def apply(self, image: NDArray[np.uint8], sigma: float) -> NDArray[np.uint8]:
        """A noisy copy of ``image``; ``image`` itself is not changed."""
        key = (image.shape, sigma)
        bank = self._banks.get(key)
        if bank is None:
            bank = []
            for _ in range(BANK):
                field = np.rint(self._rng.normal(0.0, sigma, image.shape)).clip(-127, 127).astype(np.int16)
                bank.append((field.clip(0, None).astype(np.uint8), (-field).clip(0, None).astype(np.uint8)))
            self._banks[key] = bank
        plus, minus = bank[int(self._rng.integers(BANK))]
        dy, dx = int(self._rng.integers(image.shape[0])), int(self._rng.integers(image.shape[1]))
        plus, minus = np.roll(plus, (dy, dx), axis=(0, 1)), np.roll(minus, (dy, dx), axis=(0, 1))
        return cv2.subtract(cv2.add(image, plus), minus)
