"""Per-lane upload bookkeeping: what is leased, what is in flight, how far the durable ack may move.

A lane walks its table in id order. Batches are leased in order and may complete out of order
(several requests are in flight); the durable cursor only moves over the *contiguous* prefix of
completed batches, so after a crash we resend at most the in-flight window, and the platform's
idempotency makes that harmless. Every record is one stored row (a telemetry record is one poll,
stored as one row), so the cursor moves to a batch's last record.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from edge.records import Lane
from edge.store import OutboxRow


@dataclass(slots=True)
class Batch:
    lane: Lane
    rows: list[OutboxRow]
    last_id: str  # the highest store id this batch covers (kept when rows are dead-lettered away)
    attempts: int = 0
    done: bool = False

    @property
    def first_id(self) -> str:
        return self.rows[0].id if self.rows else self.last_id


@dataclass(slots=True)
class LaneState:
    lane: Lane
    acked: str = ""  # durable cursor: everything <= acked is at the platform
    leased: str = ""  # everything <= leased has been put into a batch
    in_flight: deque[Batch] = field(default_factory=deque)  # leased, not yet acked, in lease order
    retry: deque[Batch] = field(default_factory=deque)  # failed batches waiting to go again, oldest first
    sent_records: int = 0
    dead_letters: int = 0
    checked_empty_at: float | None = None  # monotonic time this lane was last found empty
    partial_at: float = float("-inf")  # monotonic time of the last lease that was not a full batch
    ack_due: str = ""  # cursor of completed batches, to store (>= acked)
    ack_writing: bool = False  # a worker is storing the cursor now

    def lease(self, rows: list[OutboxRow]) -> Batch:
        batch = Batch(self.lane, rows, rows[-1].id)
        self.leased = batch.last_id
        self.in_flight.append(batch)
        return batch

    def requeue(self, batch: Batch) -> None:
        """Put a failed batch back so it goes before anything newer of this lane."""
        self.retry.append(batch)
        self.retry = deque(sorted(self.retry, key=lambda b: b.first_id))

    def complete(self, batch: Batch) -> str | None:
        """Mark done; return the cursor to store if the contiguous done prefix grew.

        ``acked`` is not moved here: the uplink moves it once the store has the new cursor, so
        ``acked`` never claims more than survives a crash.
        """
        batch.done = True
        moved = None
        while self.in_flight and self.in_flight[0].done:
            moved = self.in_flight.popleft().last_id
        return moved

    def reset_to(self, cursor: str) -> None:
        self.acked = self.leased = self.ack_due = cursor
        self.in_flight.clear()
        self.retry.clear()
        self.checked_empty_at = None
