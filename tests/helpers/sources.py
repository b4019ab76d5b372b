"""Running a source for the length of a ``with`` block: the one way tests start and stop sources.

The source's task is cancelled on the way out and awaited: a source that crashed on its own
re-raises its error there (only the cancellation itself is absorbed), so a test never passes over
a source that died half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any


@contextlib.asynccontextmanager
async def running(source: Any, sink: Any) -> AsyncIterator[asyncio.Task[None]]:
    """``source.run(sink)`` as a task for the block; yields the task."""
    task: asyncio.Task[None] = asyncio.create_task(source.run(sink))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
