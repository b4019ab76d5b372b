"""Counter state that survives restarts: the normaliser's trackers, kept in the store.

Without it, the first meter reading after a restart can only be compared with the last stored
*total*; with it, the tracker resumes from the last *raw* register value too, so a rollover or a
meter swap that happened while the gateway was down is still recognised as one. States are saved
every ``interval_s`` and once more on shutdown (a crash loses at most one interval of state, never
readings, and the fallback above still keeps totals monotonic).
"""

from __future__ import annotations

import logging

from edge.clock import from_us, to_us
from edge.normalise.counters import CounterState
from edge.normalise.normaliser import Normaliser
from edge.store import Store
from edge.tasks import SavedPeriodically

log = logging.getLogger(__name__)

COMPONENT = "normaliser"
MIGRATIONS = [
    """
    CREATE TABLE counter_state (
        device_id TEXT NOT NULL,
        point TEXT NOT NULL,
        last_raw REAL,
        total REAL NOT NULL,
        ts_us INTEGER,
        PRIMARY KEY (device_id, point)
    ) WITHOUT ROWID;
    """,
]


class CounterStates(SavedPeriodically):
    """Async context manager: restores on enter, saves periodically and on exit."""

    what = "normaliser counter states"

    def __init__(self, store: Store, normaliser: Normaliser, interval_s: float = 30.0) -> None:
        super().__init__(interval_s)
        self.db = store.tables(COMPONENT, ("counter_state",))
        self.normaliser = normaliser
        self._saved: dict[tuple[str, str], CounterState] = {}

    async def restore(self) -> None:
        await self.db.migrate(MIGRATIONS)
        rows = await self.db.read("SELECT device_id, point, last_raw, total, ts_us FROM counter_state")
        states = {(d, p): CounterState(raw, total, from_us(ts) if ts is not None else None)
                  for d, p, raw, total, ts in rows}
        self.normaliser.restore_counters(states)
        self._saved = dict(states)
        if states:
            log.info("normaliser: restored %d counter state(s)", len(states))

    async def save(self) -> int:
        """Write the states that changed since the last save; returns how many."""
        changed = [(key, state) for key, state in self.normaliser.counter_states().items()
                   if self._saved.get(key) != state]
        if not changed:
            return 0
        await self.db.write(
            "INSERT INTO counter_state VALUES (?,?,?,?,?) ON CONFLICT(device_id, point) DO UPDATE SET "
            "last_raw=excluded.last_raw, total=excluded.total, ts_us=excluded.ts_us",
            [(d, p, s.last_raw, s.total, to_us(s.ts) if s.ts else None) for (d, p), s in changed],
        )
        self._saved.update(changed)
        return len(changed)
