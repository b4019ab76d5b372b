"""Waiting for events, not for time: one place for the polling loop that every integration test needs.

A test states what it waits for (a predicate) and the most it is willing to wait; it returns as soon
as the predicate holds, so a fast machine is not slowed and a loaded one is not failed early. The
message names what did not happen, which is what a failing CI log needs.
"""

from __future__ import annotations

import asyncio
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
