"""The outbox: what each lane still has to upload, the durable ack cursor, dead letters and the backlog.

There is no outbox table: every record table *is* its lane's queue, walked in id (ULID) order, and
``outbox_cursor`` keeps, per lane, the last id the platform acknowledged. ``pending`` hands the
uplink the next records after the position it asks for (the uplink's lanes hold that lease in
memory, ``edge.uplink.lanes``); ``ack`` moves the stored cursor and returns only once that write is
committed, so a lane's acked cursor in memory moves only after the durable store ack (a stop right
after an ack never leaves the stored cursor behind). Records the platform rejects as invalid go to
``dead_letter`` with its message, and the cursor moves past them like past any acked record.

Only the cursor and ``dead_letter`` are written here; the record tables belong to the writer
(appends) and to maintenance (eviction, pruning).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from edge.clock import to_us
from edge.ids import new_ids
from edge.records import LANE_PRIORITY, Lane
from edge.store import codec
from edge.store.statements import counter_add
from edge.store.writer import StoreWriter

# The record table behind each lane. The inventory (devices) is never evicted: a platform must be
# able to read every record it ever got.
LANE_TABLES: dict[Lane, str] = {
    Lane.TELEMETRY: "polls",
    Lane.EVENT: "events",
    Lane.INDICATOR: "indicators",
    Lane.ALARM: "alarm_log",
    Lane.DEVICE: "devices",
}

_ACK = (
    "INSERT INTO outbox_cursor(lane, last_id, updated_us) VALUES (?,?,?) "
    "ON CONFLICT(lane) DO UPDATE SET last_id=excluded.last_id, updated_us=excluded.updated_us "
    "WHERE excluded.last_id > outbox_cursor.last_id"
)


@dataclass(frozen=True, slots=True)
class LaneBacklog:
    """One lane's upload backlog: how many records wait, and the oldest one's id and age in seconds."""

    lane: Lane
    pending: int
    oldest_id: str | None
    oldest_age_s: float | None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A record waiting for upload, already in its upload (JSON-ready) form.

    ``attachments`` holds the evidence pictures its payload references by id (``codec.evidence_ref``),
    which the uplink sends once before the record. A telemetry payload splices its stored points
    unparsed (``codec.telemetry_payload``); ``codec.record_points`` parses them where needed.
    """

    id: str
    payload: dict[str, Any]
    attachments: dict[str, bytes] = field(default_factory=dict)


class Outbox:
    """Lane reads for the uplink and the durable ack cursor, over the writer's connections."""

    def __init__(self, writer: StoreWriter) -> None:
        self._db = writer

    async def cursor(self, lane: Lane) -> str:
        """The last id of ``lane`` the platform acknowledged ("" before the first ack)."""
        row = await self._db.read_one("SELECT last_id FROM outbox_cursor WHERE lane=?", (str(lane),))
        return row[0] if row else ""

    async def pending(self, lane: Lane, after_id: str, limit: int) -> list[OutboxRow]:
        """The next ``limit`` records of ``lane`` after ``after_id``, oldest first, as upload payloads."""
        sql = f"{codec.LANE_QUERIES[lane]} WHERE id > ? ORDER BY id LIMIT ?"
        rows = await self._db.read(sql, (after_id, limit))
        if lane is Lane.TELEMETRY:
            telemetry = codec.telemetry_payload
            return [OutboxRow(r[0], telemetry(r)) for r in rows]
        if lane is Lane.INDICATOR or lane is Lane.DEVICE:
            return [OutboxRow(r[0], json.loads(r[1])) for r in rows]
        make = codec.event_payload if lane is Lane.EVENT else codec.alarm_payload
        out = []
        for r in rows:
            evidence = await self._load_evidence(r[-1]) if r[-1] else None
            payload = make(r, evidence)
            out.append(OutboxRow(r[0], payload, {payload["evidence"]["id"]: evidence} if evidence else {}))
        return out

    async def _load_evidence(self, name: str) -> bytes | None:
        path = self._db.evidence_file(codec.upload_evidence_name(name))  # the copy that may leave the box
        if path is None:
            return None
        return await asyncio.to_thread(path.read_bytes)

    async def ack(self, lane: Lane, last_id: str) -> None:
        """Durably record that the platform has everything in ``lane`` up to and including ``last_id``."""
        await self._db.submit([(_ACK, [(str(lane), last_id, to_us(self._db.clock.now()))])], 1)

    async def dead_letter(self, lane: Lane, rejected: Iterable[tuple[str, dict[str, Any], str | None, str]]) -> None:
        """Move rejected records aside: (record_id, payload, platform code, platform message)."""
        items = list(rejected)
        if not items:
            return
        ids = new_ids(len(items))
        now = to_us(self._db.clock.now())
        rows = [(i, str(lane), rid, codec.dumps(payload), code, message, now)
                for i, (rid, payload, code, message) in zip(ids, items, strict=True)]
        await self._db.submit([
            ("INSERT INTO dead_letter VALUES (?,?,?,?,?,?,?)", rows),
            counter_add("uplink.dead_letters", len(rows)),
        ], len(rows))

    async def has_pending(self, lane: Lane) -> bool:
        """Whether anything in ``lane`` is not yet acknowledged (cheap: one index probe, unlike ``backlog``)."""
        table = LANE_TABLES[lane]
        row = await self._db.read_one(f"SELECT 1 FROM {table} WHERE id > ? LIMIT 1",  # noqa: S608 - fixed names
                                      (await self.cursor(lane),))
        return row is not None

    async def backlog(self) -> list[LaneBacklog]:
        """Pending records and the oldest pending age per lane (for the panel and metrics)."""
        out = []
        now_us = to_us(self._db.clock.now())
        for lane in LANE_PRIORITY:
            table = LANE_TABLES[lane]
            cursor = await self.cursor(lane)
            row = await self._db.read_one(f"SELECT count(*), min(id) FROM {table} WHERE id > ?",  # noqa: S608
                                          (cursor,))
            pending, oldest = (row or (0, None))
            age = None
            if oldest:
                ts_col = "period_end_us" if lane is Lane.INDICATOR else "ts_us"
                ts = await self._db.read_one(f"SELECT {ts_col} FROM {table} WHERE id=?", (oldest,))  # noqa: S608
                age = max(0.0, (now_us - ts[0]) / 1e6) if ts else None
            out.append(LaneBacklog(lane, int(pending), oldest, age))
        return out
