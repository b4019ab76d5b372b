"""Named reads on the store's core tables, each returning typed values or frozen dataclasses.

The core tables (``readings``, ``events``, ``alarm_log``, ``alarms``, ``indicators``, ``devices``,
``counters``, ``dead_letter``) belong to the store. Components that need to read them ask here by
name; none sends SQL of its own against them, so a column or an index can change in one place,
and a reader gets ``row.raised_us`` rather than ``r[9]``.
"""

from __future__ import annotations

from typing import Any

from edge.clock import from_us
from edge.records import AlarmState, Severity
from edge.store import codec
from edge.store.outbox import LANE_TABLES
from edge.store.writer import StoreWriter
from edge.transitions import OpenAlarm

COUNTABLE = frozenset({*LANE_TABLES.values(), "alarms", "dead_letter"})


class CoreQueries:
    """Counters, the inventory and the open alarms: the reads the daemon itself needs."""

    def __init__(self, writer: StoreWriter) -> None:
        self._db = writer

    async def open_alarms(self) -> list[OpenAlarm]:
        """The open alarms, oldest first (what the rule engines restore their open set from)."""
        rows = await self._db.read(
            "SELECT alarm_id, code, device_id, severity, state, raised_us, message, data FROM alarms"
            " WHERE is_open=1 ORDER BY raised_us"
        )
        return [
            OpenAlarm(alarm_id, code, device_id, Severity(severity), AlarmState(state), from_us(raised_us),
                      message, codec.json.loads(data))
            for alarm_id, code, device_id, severity, state, raised_us, message, data in rows
        ]

    async def counter(self, name: str) -> int:
        row = await self._db.read_one("SELECT value FROM counters WHERE name=?", (name,))
        return int(row[0]) if row else 0

    async def counters(self) -> dict[str, int]:
        return {name: int(value) for name, value in await self._db.read("SELECT name, value FROM counters")}

    async def count(self, table: str) -> int:
        """Rows in one of the core tables (``COUNTABLE``); ValueError for any other name."""
        if table not in COUNTABLE:
            raise ValueError(f"unknown table {table!r}")
        row = await self._db.read_one(f"SELECT count(*) FROM {table}")  # noqa: S608 - table is whitelisted
        return int(row[0]) if row else 0

    async def latest_devices(self) -> dict[str, dict[str, Any]]:
        """The newest inventory payload of every device ever listed (removed ones included)."""
        rows = await self._db.read(
            "SELECT d.payload FROM devices d JOIN (SELECT device_id, max(version) AS v FROM devices"
            " GROUP BY device_id) m ON d.device_id = m.device_id AND d.version = m.v")
        out = {}
        for (payload,) in rows:
            data = codec.json.loads(payload)
            out[data["device_id"]] = data
        return out

    async def answers(self) -> bool:
        """Does the reader connection answer ``SELECT 1``? (The service health probe.)"""
        row = await self._db.read_one("SELECT 1")
        return row == (1,)
