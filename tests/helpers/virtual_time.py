"""Driving asyncio code by the manual clock: run every task until it waits on the clock, then jump.

``run_virtual(clock, seconds)`` is how a seam test lets a scheduler live through minutes in
milliseconds: whatever is runnable runs (``settle``), then time jumps to the earliest sleeper on
the ``ManualClock``, and so on to the end. Nothing is decided by wall time, so the same test gives
the same slots, retries and backoff steps on a loaded CI machine as on an idle one.
"""

from __future__ import annotations

import asyncio

from edge.clock import ManualClock

_MAX_TURNS = 100_000


async def settle() -> None:
    """Return once no task is runnable: everything waits on the clock, a queue or a timer.

    Looks at the loop's ready queue (a private attribute of asyncio's loop, which is why this lives in
    the tests): a fixed number of ``sleep(0)`` turns is not enough when one wake-up sets off a long
    chain of in-memory work, and jumping the clock before that chain ends would make it late.
    """
    loop = asyncio.get_running_loop()
    for _ in range(_MAX_TURNS):
        await asyncio.sleep(0)
        if not loop._ready:  # type: ignore[attr-defined]
            return
    raise AssertionError("the event loop never went idle: a task spins without waiting")


async def run_virtual(clock: ManualClock, seconds: float) -> None:
    """Let every task run until it waits, then jump to the earliest sleeper; repeat up to ``seconds`` on."""
    end = clock.monotonic() + seconds
    while True:
        await settle()
        wake = clock.next_wake()
        if wake is None or wake > end:
            clock.advance(max(end - clock.monotonic(), 0.0))
            await settle()
            return
        clock.advance_to_next_wake()
