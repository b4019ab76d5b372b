"""Waiting for events, not for time: one place for the polling loop that every integration test needs.

A test states what it waits for (a predicate) and the most it is willing to wait; it returns as soon
as the predicate holds, so a fast machine is not slowed and a loaded one is not failed early. The
message names what did not happen, which is what a failing CI log needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

POLL_S = 0.02


async def eventually(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Return once ``check()`` is true; fail after ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout} s")
        await asyncio.sleep(POLL_S)


async def eventually_async(check: Callable[[], Awaitable[bool]], timeout: float = 15.0,
                           what: str = "condition") -> None:
    """``eventually`` for a predicate that must itself await (a store query, an HTTP call)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout} s")
        await asyncio.sleep(POLL_S)


def wait_until(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition",
               poll_s: float = 0.05) -> None:
    """The blocking form, for tests that drive a subprocess from synchronous code."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout} s")
        time.sleep(poll_s)


class LoopStalls:
    """The longest time the running event loop was kept from a 10 ms timer while the block ran.

    Timing tests on a loaded two-core CI box see the whole process held back now and then (another
    xdist worker training, a garbage collection of a large heap): every task runs late together. A
    test that asserts one task does not delay another adds ``worst_s`` to its bound, so that what it
    measures is the delay the code under test caused, not the delay the machine caused to everyone.
    """

    PERIOD_S = 0.01

    def __init__(self) -> None:
        self.worst_s = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.PERIOD_S)
            self.worst_s = max(self.worst_s, loop.time() - started - self.PERIOD_S)

    async def __aenter__(self) -> LoopStalls:
        self._task = asyncio.create_task(self._watch(), name="loop-stall-watch")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
