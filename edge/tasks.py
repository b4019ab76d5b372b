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
