"""A wait with a timeout ends when cancelled, even when what it waits for arrives in the same loop turn.

The defect: a fresh CI-like run under load hung for 300 s in ``test_estate_switch_off_uploads_unblurred``
while the gateway stopped. The camera source's analysis loop waited for the next frame with
``asyncio.wait_for(event.wait(), timeout)``. On Python 3.11, ``wait_for`` *returns the result* instead
of raising ``CancelledError`` when the awaited future completes in the same loop iteration as the
cancellation (fixed in 3.12). The reader thread publishes a frame every 0.1-0.2 s, so now and then the
stop's cancellation met a frame: it was spent, the loop analysed the frame and went on waiting, and
the ``TaskGroup`` and supervisor above it waited for ever.

The same race sat in every wait with a timeout of ours, so each is checked here by one recipe: the
wake-up is scheduled first and the cancellation right behind it, in the same loop turn, which is the
order that lost the cancellation. ``asyncio.wait_for`` is now banned from the product code (ruff
TID251, ``pyproject.toml``); ``asyncio.timeout`` does not have the race.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import numpy as np

from drivers.camera.frames import Frame, LatestFrame
from edge.tasks import wait_event


async def cancelled_as_it_wakes(waiting_loop: Coroutine[Any, Any, None], wake: Callable[[], None]) -> None:
    """Run ``waiting_loop`` (a component's loop that waits, works, waits again); once it waits, wake it and
    cancel it so that both land in one loop turn, wake-up first. The loop must end cancelled."""
    task = asyncio.create_task(waiting_loop)
    for _ in range(5):  # let it reach its await (wait_for's helper task needs a turn of its own)
        await asyncio.sleep(0)
    assert not task.done()
    wake()  # what it waits for is ready (a set event, or a set scheduled from a thread)...
    asyncio.get_running_loop().call_soon(task.cancel)  # ...and the stop comes right behind it
    try:
        async with asyncio.timeout(2):
            await task
    except asyncio.CancelledError:
        assert task.cancelled()
        return
    except TimeoutError:
        task.cancel()
        raise AssertionError("the cancellation was lost: the loop went on waiting") from None
    raise AssertionError("the loop returned instead of ending cancelled")


def _frame(seq: int) -> Frame:
    return Frame(np.zeros((2, 2, 3), np.uint8), seq, 0.0, datetime.now(UTC))


async def test_the_frame_slot() -> None:
    """The camera source's analysis loop, as it waits for frames (``CameraSource._analyse_loop``)."""
    slot = LatestFrame()
    slot.bind(asyncio.get_running_loop())

    async def analyse_loop() -> None:
        seq = 0
        while True:
            frame = await slot.wait_newer(seq, 30)
            if frame is not None:
                seq = frame.seq

    await cancelled_as_it_wakes(analyse_loop(), lambda: slot.publish(_frame(1)))


async def test_an_event_wait() -> None:
    """The wake-up-or-poll loops of the uplink, the panel's live feed, the notifier and the OPC-UA source."""
    event = asyncio.Event()

    async def wake_or_poll_loop() -> None:
        while True:
            if await wait_event(event, 30):
                event.clear()

    await cancelled_as_it_wakes(wake_or_poll_loop(), event.set)


async def test_an_event_wait_still_tells_set_from_timeout() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 30) is True
