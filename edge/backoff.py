"""Capped exponential backoff with a chosen jitter, and a reset: the one backoff every retry loop uses.

Step ``n`` (0 after a reset) waits around ``min(maximum_s, initial_s * factor**n)``; the jitter says
how the wait is drawn around that step:

==========  =============================================  ===============================================
jitter      wait drawn from                                used by
==========  =============================================  ===============================================
``none``    exactly the step                               the supervisor's restarts, a Modbus device's
                                                           retry after it went offline (its lane's grid
                                                           is the spread), a Modbus TCP connect, alarm
                                                           notifier retries, failing camera snapshots
``full``    uniform [0, step]                              the uplink (AWS "full jitter": gateways that
                                                           lost the platform together come back spread)
``equal``   uniform [step / 2, step]                       MQTT broker reconnects, OPC-UA sessions, a BLE
                                                           adapter's scan restarts
``spread``  uniform [step * (1 - s), step * (1 + s)]       a camera's resolve retries and RTSP reconnects
                                                           (s = 0.2)
==========  =============================================  ===============================================

Why one module: ten retry loops had their own copies, each with its own idea of where the cap applies and
when the count starts over. Here the cap applies to every step, the first included (a cap below
``initial_s`` makes every step the cap; a ``spread`` wait may exceed it by ``s``), ``reset`` starts
over at ``initial_s``, and the randomness comes from an injectable
``random.Random`` so a test with the manual clock sees the same waits every run. The caller sleeps
(``asyncio.sleep`` or a scheduler's due time); this module never touches the clock.
"""

from __future__ import annotations

import random
from typing import Literal

Jitter = Literal["none", "full", "equal", "spread"]
MAX_DOUBLINGS = 64  # beyond this the step is the cap anyway; keeps factor**n finite


def step_s(attempt: int, initial_s: float, maximum_s: float, factor: float = 2.0) -> float:
    """The un-jittered wait of step ``attempt`` (0-based): ``min(maximum_s, initial_s * factor**attempt)``."""
    if attempt < 0:
        raise ValueError(f"backoff attempt must be >= 0, got {attempt}")
    return min(maximum_s, initial_s * factor ** min(attempt, MAX_DOUBLINGS))


class Backoff:
    """Successive waits of one retry loop: ``next_delay()`` per failure, ``reset()`` after a success."""

    def __init__(
        self,
        initial_s: float,
        maximum_s: float,
        *,
        jitter: Jitter = "none",
        spread: float = 0.2,
        factor: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        if initial_s < 0 or maximum_s < 0:
            raise ValueError(f"backoff waits cannot be negative, got initial_s={initial_s}, maximum_s={maximum_s}")
        if factor < 1:
            raise ValueError(f"backoff factor must be >= 1, got {factor}")
        if not 0 <= spread < 1:
            raise ValueError(f"backoff spread must be in [0, 1), got {spread}")
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.jitter: Jitter = jitter
        self.spread = spread
        self.factor = factor
        self.attempt = 0  # failures since the last reset
        self._rng = rng or random.Random()

    def peek_step(self) -> float:
        """The un-jittered step the next ``next_delay`` draws around (for logs and status pages)."""
        return step_s(self.attempt, self.initial_s, self.maximum_s, self.factor)

    def next_delay(self) -> float:
        """The wait before the next try, drawn per ``jitter``; counts one more failure."""
        step = self.peek_step()
        self.attempt += 1
        if self.jitter == "full":
            return self._rng.uniform(0, step)
        if self.jitter == "equal":
            return self._rng.uniform(step / 2, step)
        if self.jitter == "spread":
            return step * self._rng.uniform(1 - self.spread, 1 + self.spread)
        return step

    def reset(self) -> None:
        """After a success: the next failure waits ``initial_s`` (jittered) again."""
        self.attempt = 0
