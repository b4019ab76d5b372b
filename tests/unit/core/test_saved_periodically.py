"""``edge.tasks.SavedPeriodically``: the one shape of the counter states and the pending alarm timers."""

from __future__ import annotations

import logging

import pytest

from edge.tasks import SavedPeriodically
from tests.helpers.waiting import eventually


class Flaky(SavedPeriodically):
    what = "test state"

    def __init__(self) -> None:
        super().__init__(interval_s=0.01)
        self.restored = 0
        self.saves = 0

    async def restore(self) -> None:
        self.restored += 1

    async def save(self) -> int:
        self.saves += 1
        if self.saves == 2:
            raise OSError("disk went away")
        return 1


async def test_a_failed_save_is_logged_and_tried_again_and_exit_saves_once_more(caplog: pytest.LogCaptureFixture) -> None:
    state = Flaky()
    with caplog.at_level(logging.ERROR, logger="edge.tasks"):
        async with state:
            assert state.restored == 1
            await eventually(lambda: state.saves >= 4, timeout=5, what="saves after the failed one")
            saved_while_running = state.saves  # no await until the exit stops the loop
    assert state.saves == saved_while_running + 1  # the save on exit, after the loop stopped
    assert [r.getMessage() for r in caplog.records] == ["saving test state failed"]
    assert state.restored == 1
