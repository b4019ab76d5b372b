"""Exponential backoff with full jitter (AWS architecture blog's "full jitter" variant).

Full jitter spreads the retries of many gateways that lost the platform at the same moment,
so they do not come back as one thundering herd.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial_s: float = 1.0, maximum_s: float = 60.0, rng: random.Random | None = None) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """Delay before the next try: uniform in [0, min(max, initial * 2**attempt)]."""
        cap = min(self.maximum_s, self.initial_s * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return self._rng.uniform(0, cap)

    def reset(self) -> None:
        self.attempt = 0
