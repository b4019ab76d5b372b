"""The pipeline gathers concurrent ``readings`` calls into one pass (one commit, one pass of each stage).

A real SQLite store in a temporary file, the real rule engine interface (a recording stand-in for
the rules, which only need to see every reading once, in order), no sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.errors import StoreError
from edge.pipeline import Pipeline
from edge.records import DeviceStatus, Event, Reading
from edge.store import Store
from edge.transitions import AlarmTransition
from tests.helpers.sql import sql_one

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def poll(device: str, k: int) -> list[Reading]:
    return [Reading(device, f"p{i}", float(k), "V", T0 + timedelta(seconds=k)) for i in range(30)]


class SeenRules:
    """Records what the rules are shown: each pass's readings, in order."""

    def __init__(self) -> None:
        self.passes: list[list[Reading]] = []

    def on_readings(self, readings: Sequence[Reading]) -> Sequence[AlarmTransition]:
        self.passes.append(list(readings))
        return ()

    def on_status(self, status: DeviceStatus) -> Sequence[AlarmTransition]:
        return ()

    def on_events(self, events: Sequence[Event]) -> Sequence[AlarmTransition]:
        return ()


async def test_ten_sources_at_once_make_one_pass_and_each_returns_after_its_commit(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db", maintenance_interval_s=0) as store:
        rules = SeenRules()
        pipeline = Pipeline(store, rules=rules)
        commits_before = store.commits
        # Ten converters' hand-overs deliver in the same turn of the loop (their lanes are aligned).
        await asyncio.gather(*(pipeline.readings(poll(f"conv{c}-1", 1)) for c in range(10)))
        assert pipeline.reading_batches == 1 and store.commits - commits_before == 1
        assert [r.device_id for r in rules.passes[0][::30]] == [f"conv{c}-1" for c in range(10)]
        assert (await sql_one(store, "SELECT count(*), sum(n) FROM polls")) == (10, 300)
        assert pipeline.readings_in == 300
        # Calls that arrive while a pass is busy go together in the next one, not one pass each.
        first = asyncio.create_task(pipeline.readings(poll("a", 2)))
        await asyncio.sleep(0)  # the first pass has started and waits for its commit
        await asyncio.gather(first, *(pipeline.readings(poll(f"b{c}", 2)) for c in range(5)))
        assert pipeline.reading_batches == 3
        assert [len(p) for p in rules.passes[1:]] == [30, 150]


async def test_a_refused_batch_fails_every_caller_in_it_and_the_next_pass_goes_on(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db", maintenance_interval_s=0) as store:
        pipeline = Pipeline(store)
        assert store._db._writer_db is not None
        await store._db._writer_db.run(lambda conn: conn.execute("ALTER TABLE polls RENAME TO gone"))
        results = await asyncio.gather(*(pipeline.readings(poll(f"d{c}", 1)) for c in range(3)),
                                       return_exceptions=True)
        assert all(isinstance(r, StoreError) for r in results), results
        await store._db._writer_db.run(lambda conn: conn.execute("ALTER TABLE gone RENAME TO polls"))
        await pipeline.readings(poll("d9", 2))
        assert (await sql_one(store, "SELECT count(*) FROM polls")) == (1,)


async def test_a_caller_cancelled_while_waiting_leaves_its_readings_to_be_stored(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db", maintenance_interval_s=0) as store:
        pipeline = Pipeline(store)
        caller = asyncio.create_task(pipeline.readings(poll("d1", 1)))
        await asyncio.sleep(0)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await pipeline.drain()  # what the daemon does before it closes the store
        assert (await sql_one(store, "SELECT count(*), sum(n) FROM polls")) == (1, 30)
