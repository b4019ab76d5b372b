"""Small helpers for the background tasks every component owns (aiomqtt's lifecycle pattern)."""

from __future__ import annotations

import asyncio
import contextlib


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


async def retry_after(delay_s: float) -> None:
    """Wait ``delay_s`` before a reconnect, but stop at once if this task's cancellation was swallowed.

    Why: a library may catch the ``CancelledError`` meant for our task while it tidies up its own
    tasks (asyncua 2.1's ``Client._cancel_task`` awaits its helper tasks under
    ``except (CancelledError, Exception): pass``). The cancellation is then spent, the reconnect
    loop goes round again, and whoever cancelled us (a reload, a stop, a ``TaskGroup``) waits for
    ever. ``Task.cancelling()`` still counts the request, so every reconnect loop asks it here.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
    await asyncio.sleep(delay_s)
