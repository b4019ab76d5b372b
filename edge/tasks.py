"""Small helpers for the background tasks every component owns (aiomqtt's lifecycle pattern)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Self

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Cancel ``task`` and wait until it has really finished; ``None`` is a no-op.

    Waiting matters: a component's ``__aexit__`` must not return while its task can still touch
    the store or the network.
    """
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def wait_event(event: asyncio.Event, timeout_s: float | None) -> bool:
    """Wait until ``event`` is set or ``timeout_s`` has passed (None: no limit); True when it was set.

    Why not ``asyncio.wait_for(event.wait(), timeout_s)``: on Python 3.11 ``wait_for`` returns the
    result instead of raising ``CancelledError`` when the event is set in the same loop iteration as
    a cancellation (fixed in 3.12), so a loop that waits for a wake-up or a timeout could miss its
    stop and hang whoever waits for it. ``asyncio.timeout`` does not lose it (the product code may
    not use ``wait_for``: ruff TID251).
    """
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def retry_after(delay_s: float) -> None:
    """Wait ``delay_s`` before a reconnect, but stop at once if this task's cancellation was swallowed.

    Why: a library may catch the ``CancelledError`` meant for our task while it tidies up its own
    tasks (asyncua 2.1's ``Client._cancel_task`` awaits its helper tasks under
    ``except (CancelledError, Exception): pass``). The cancellation is then spent, the reconnect
    loop goes round again, and whoever cancelled us (a reload, a stop, a ``TaskGroup``) waits for
    ever. ``Task.cancelling()`` still counts the request, so every reconnect loop asks it here.
    """
    raise_if_cancelling()
    await asyncio.sleep(delay_s)


def raise_if_cancelling() -> None:
    """Raise ``CancelledError`` if this task was asked to stop and the request was swallowed on the way.

    ``Task.cancelling()`` counts cancellation requests even when a library caught the
    ``CancelledError`` (asyncua's clean-up, pymodbus's ``wait_for`` on Python 3.11), so a loop that
    asks here before going round again honours a stop it never saw.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class SavedPeriodically:
    """State a component keeps in the store: restored on enter, saved every ``interval_s`` and on exit.

    Why one shape for all of them: the normaliser's counter states and the rule engine's pending
    timers must both survive a restart, and both lose at most one interval to a SIGKILL; a crash of the
    save loop must never stop the component, so a failed save is logged and tried again next interval.
    Subclasses give ``restore`` (once, before the first record is processed) and ``save`` (what changed).
    """

    what = "state"  # names the state in the log line of a failed save

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def restore(self) -> None:
        raise NotImplementedError

    async def save(self) -> int:
        """Write what changed since the last save; returns how many entries."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.restore()
        self._task = asyncio.create_task(self._loop(), name=f"save {self.what}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.save()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.save()
            except Exception:
                log.exception("saving %s failed", self.what)
