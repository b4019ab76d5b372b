"""Pending alarm timers that survive restarts (issue 10 defect 4).

A ``min_duration_s`` condition (hydrant pressure below its limit for 30 s) is a timer in the rule
engine's memory. A daemon restarted every few seconds (a crash loop, a flapping power supply)
restarted that wait every time and never raised a real 30-second low-pressure episode. The
engine's pending timers are therefore kept in the store: saved ``interval_s`` after they change
and once more on shutdown, restored before the first reading is evaluated. A SIGKILL loses at most
the last ``interval_s`` of a timer's *start*, never a timer that had been running longer.

State inputs' waits (a fire door held open for its ``min_duration_s``, ``edge.rules.states``) are
kept in the same table with direction ``"state"``: the engine's ``pending_timers()`` reports both.
"""

from __future__ import annotations

import logging
from datetime import datetime

from edge.clock import from_us, to_us
from edge.rules.engine import RuleEngine, TimerKey
from edge.store import Store
from edge.tasks import SavedPeriodically

log = logging.getLogger(__name__)

COMPONENT = "rules"
MIGRATIONS = [
    """
    CREATE TABLE rule_timer (
        device_id TEXT NOT NULL,
        point TEXT NOT NULL,
        direction TEXT NOT NULL,
        since_us INTEGER NOT NULL,
        PRIMARY KEY (device_id, point, direction)
    ) WITHOUT ROWID;
    """,
]


class PendingTimers(SavedPeriodically):
    """Async context manager: restores the engine's timers on enter, saves changes while running and on exit."""

    what = "pending alarm timers"

    def __init__(self, store: Store, engine: RuleEngine, interval_s: float = 1.0) -> None:
        super().__init__(interval_s)
        self.db = store.tables(COMPONENT, ("rule_timer",))
        self.engine = engine
        self._saved: dict[TimerKey, datetime] = {}

    async def restore(self) -> None:
        await self.db.migrate(MIGRATIONS)
        rows = await self.db.read("SELECT device_id, point, direction, since_us FROM rule_timer")
        timers = {(d, p, direction): from_us(since) for d, p, direction, since in rows}
        self.engine.restore_timers(timers)
        self._saved = timers
        if timers:
            log.info("rules: resumed %d pending alarm timer(s)", len(timers))

    async def save(self) -> int:
        """Write what changed since the last save (started, restarted or ended timers); returns how many."""
        current = self.engine.pending_timers()
        started = [(k, v) for k, v in current.items() if self._saved.get(k) != v]
        ended = [k for k in self._saved if k not in current]
        if not started and not ended:
            return 0
        if started:
            await self.db.write(
                "INSERT INTO rule_timer VALUES (?,?,?,?) ON CONFLICT(device_id, point, direction) DO UPDATE SET "
                "since_us=excluded.since_us", [(d, p, direction, to_us(v)) for (d, p, direction), v in started])
        if ended:
            await self.db.write("DELETE FROM rule_timer WHERE device_id=? AND point=? AND direction=?",
                                           ended)
        self._saved = current
        return len(started) + len(ended)
