"""Named reads on the store's core tables, each returning typed values or frozen dataclasses.

The indicator fold's bulk reads are shaped for its hot path instead: ``polls_after`` hands over one
row per stored poll with its reading count and shape, ``series_values_in`` parses only the polls of
devices whose values it keeps, and the row-by-row scans (``readings_after``, ``events_after``)
return NamedTuples, immutable and named but built at tuple cost.

The core tables (``polls``, ``events``, ``alarm_log``, ``alarms``, ``indicators``, ``devices``,
``counters``, ``dead_letter``) belong to the store. Components that need to read them ask here by
name; none sends SQL of its own against them, so a column or an index can change in one place,
and a reader gets ``row.raised_us`` rather than ``r[9]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import orjson

from edge.clock import from_us
from edge.records import AlarmState, Severity
from edge.store import codec
from edge.store.connection import Statement
from edge.store.outbox import LANE_TABLES
from edge.store.writer import StoreWriter
from edge.transitions import OpenAlarm

COUNTABLE = frozenset({*LANE_TABLES.values(), "alarms", "dead_letter", "readings"})
_COUNT_SQL = {"readings": "SELECT coalesce(sum(n), 0) FROM polls"}  # readings, not rows: a poll holds several
_INDICATOR_COLUMNS = ("id, key, version, code, granularity, period_start_us, period_end_us, value, unit, samples,"
                      " coverage, payload")


class StoredReading(NamedTuple):
    """One reading of a stored poll (``id`` is the poll's).

    A NamedTuple, not a dataclass: the indicator fold walks thousands a second, and unpacking a tuple
    costs nothing to build (fields read by name or unpacked in order).
    """

    id: str
    device_id: str
    point: str
    value: float | None
    unit: str
    quality: int
    ts_us: int


class StoredEvent(NamedTuple):
    """One ``events`` row as the indicator fold needs it; ``data`` is the stored JSON text (parse on demand)."""

    id: str
    code: str
    device_id: str | None
    data: str
    ts_us: int


@dataclass(frozen=True, slots=True)
class StoredIndicator:
    """One ``indicators`` row (one version of one figure); ``payload`` is the upload JSON text."""

    id: str
    key: str
    version: int
    code: str
    granularity: str
    period_start_us: int
    period_end_us: int
    value: float | None
    unit: str
    samples: int
    coverage: float
    payload: str


@dataclass(frozen=True, slots=True)
class IndicatorPeriod:
    """A period some figure of one code was stored for, and that figure's key."""

    granularity: str
    start_us: int
    key: str


@dataclass(frozen=True, slots=True)
class EvidenceEvent:
    """The newest event of a device that kept a picture: when, the picture's file name, its data."""

    ts_us: int
    evidence_path: str
    data: dict[str, Any]


class CoreQueries:
    """Named reads (and the clock check's flag) on the core tables other than the alarms (``Store.records``)."""

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
                      message, json.loads(data))
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
        sql = _COUNT_SQL.get(table) or f"SELECT count(*) FROM {table}"  # noqa: S608 - table is whitelisted
        row = await self._db.read_one(sql)
        return int(row[0]) if row else 0

    async def latest_devices(self) -> dict[str, dict[str, Any]]:
        """The newest inventory payload of every device ever listed (removed ones included)."""
        rows = await self._db.read(
            "SELECT d.payload FROM devices d JOIN (SELECT device_id, max(version) AS v FROM devices"
            " GROUP BY device_id) m ON d.device_id = m.device_id AND d.version = m.v")
        out = {}
        for (payload,) in rows:
            data = json.loads(payload)
            out[data["device_id"]] = data
        return out

    # ------------------------------------------------------------------ readings and events (by id)
    async def readings_after(self, after_id: str, polls: int) -> tuple[list[StoredReading], str, int]:
        """The readings of the next ``polls`` polls after ``after_id``: ``(readings, last poll id, polls read)``."""
        rows = await self._db.read(
            "SELECT id, device_id, ts_us, shape, points FROM polls WHERE id > ? ORDER BY id LIMIT ?", (after_id, polls))
        shapes = await self.shapes({r[3] for r in rows})
        out: list[StoredReading] = []
        quality = codec.quality_of
        for rid, device_id, ts_us, shape, points in rows:
            names = shapes[shape]
            out.extend(StoredReading(rid, device_id, point, p["value"], unit, quality(p["quality"]), ts_us)
                       for (point, unit), p in zip(names, orjson.loads(points), strict=True))
        return out, (rows[-1][0] if rows else after_id), len(rows)

    async def polls_after(self, after_id: str, limit: int) -> list[tuple[str, int, int, int, str]]:
        """The next ``limit`` stored polls after ``after_id``: ``(device, ts_us, readings, shape, id)``.

        The points themselves stay in SQLite: the indicator fold decides what to count and keep
        once per (device, shape) (``shapes`` names a shape's points), and parses only the polls of
        devices whose values it keeps (``series_values_in``).
        """
        rows = await self._db.read(
            "SELECT device_id, ts_us, n, shape, id FROM polls WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))
        return cast(list[tuple[str, int, int, int, str]], rows)

    async def shapes(self, ids: Iterable[int]) -> dict[int, list[tuple[str, str]]]:
        """The ``(point, unit)`` pairs, in poll order and canonical units, of each poll shape in ``ids``."""
        wanted = sorted(set(ids))
        out: dict[int, list[tuple[str, str]]] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            rows = await self._db.read(
                f"SELECT id, names FROM poll_shapes WHERE id IN ({','.join('?' * len(part))})", part)  # noqa: S608
            out.update((shape, [(p, u) for p, u in json.loads(names)]) for shape, names in rows)
        return out

    async def series_values_in(self, after_id: str, upto_id: str, series: Iterable[tuple[str, str, str]],
                               ) -> list[tuple[str, str, str, float | None, int, int]]:
        """``(device, point, unit, value, quality, ts_us)`` of the given series in the polls ``(after_id, upto_id]``, in order."""
        wanted = set(series)
        devices = sorted({d for d, _p, _u in wanted})
        if not devices:
            return []
        out: list[tuple[str, str, str, float | None, int, int]] = []
        picks: dict[tuple[str, int], list[tuple[int, str, str]]] = {}  # (device, shape) -> kept (index, point, unit)
        names: dict[int, list[tuple[str, str]]] = {}
        quality = codec.quality_of
        for start in range(0, len(devices), 500):
            part = devices[start:start + 500]
            rows = await self._db.read(
                "SELECT id, device_id, ts_us, shape, points FROM polls WHERE id > ? AND id <= ?"  # noqa: S608
                f" AND device_id IN ({','.join('?' * len(part))}) ORDER BY id", [after_id, upto_id, *part])
            missing = {r[3] for r in rows} - names.keys()
            if missing:
                names.update(await self.shapes(missing))
            for _rid, device_id, ts_us, shape, points in rows:
                pick = picks.get((device_id, shape))
                if pick is None:
                    pick = picks[(device_id, shape)] = [(i, p, u) for i, (p, u) in enumerate(names[shape])
                                                        if (device_id, p, u) in wanted]
                if pick:
                    values = orjson.loads(points)
                    out.extend((device_id, p, u, values[i]["value"], quality(values[i]["quality"]), ts_us)
                               for i, p, u in pick)
        return out  # in id order per device (the devices' chunks may interleave; their series never do)

    async def events_after(self, after_id: str, limit: int) -> list[StoredEvent]:
        """The next ``limit`` events after ``after_id``, in id order."""
        rows = await self._db.read(
            "SELECT id, code, device_id, data, ts_us FROM events WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))
        return [StoredEvent._make(r) for r in rows]

    async def latest_evidence(self, device_id: str) -> EvidenceEvent | None:
        """The newest event of ``device_id`` that kept a picture (its data {} if unreadable), or None."""
        row = await self._db.read_one(
            "SELECT ts_us, evidence_path, data FROM events WHERE device_id=? AND evidence_path IS NOT NULL"
            " ORDER BY ts_us DESC LIMIT 1", (device_id,))
        if row is None:
            return None
        try:
            data = json.loads(row[2])
        except ValueError:
            data = {}
        return EvidenceEvent(int(row[0]), str(row[1]), data if isinstance(data, dict) else {})

    # ------------------------------------------------------------------ indicators
    async def indicator_periods(self, code: str, since_us: int) -> set[IndicatorPeriod]:
        """The periods (with the figure's key) of every stored ``code`` figure starting at or after ``since_us``."""
        rows = await self._db.read(
            "SELECT DISTINCT granularity, period_start_us, key FROM indicators WHERE code=? AND period_start_us >= ?",
            (code, since_us))
        return {IndicatorPeriod(str(g), int(s), str(k)) for g, s, k in rows}

    async def indicators_of_period(self, codes: Sequence[str], granularity: str,
                                   period_start_us: int) -> list[StoredIndicator]:
        """Every stored version of the ``codes`` figures for one period."""
        marks = ",".join("?" * len(codes))
        rows = await self._db.read(
            f"SELECT {_INDICATOR_COLUMNS} FROM indicators WHERE code IN ({marks})"  # noqa: S608
            " AND granularity=? AND period_start_us=?", (*codes, granularity, period_start_us))
        return [StoredIndicator(*r) for r in rows]

    async def indicators_between(self, code: str, granularity: str, start_us: int,
                                 end_us: int) -> list[StoredIndicator]:
        """Every stored version of ``code`` for the periods starting in ``[start_us, end_us)``."""
        rows = await self._db.read(
            f"SELECT {_INDICATOR_COLUMNS} FROM indicators WHERE code=? AND granularity=?"  # noqa: S608
            " AND period_start_us >= ? AND period_start_us < ?", (code, granularity, start_us, end_us))
        return [StoredIndicator(*r) for r in rows]

    async def newest_indicators(self, code: str, granularity: str, limit: int = 50) -> list[StoredIndicator]:
        """The newest stored ``code`` figures of one granularity: newest period first, highest version first."""
        rows = await self._db.read(
            f"SELECT {_INDICATOR_COLUMNS} FROM indicators WHERE code=? AND granularity=?"  # noqa: S608
            " ORDER BY period_start_us DESC, version DESC LIMIT ?", (code, granularity, limit))
        return [StoredIndicator(*r) for r in rows]

    async def indicator_codes(self) -> list[str]:
        """Every indicator code stored, by skipping along the (code, granularity, period_start) index."""
        out: list[str] = []
        code = ""
        while True:
            row = await self._db.read_one("SELECT min(code) FROM indicators WHERE code > ?", (code,))
            if row is None or row[0] is None:
                return out
            code = row[0]
            out.append(code)

    # ------------------------------------------------------------------ clock check
    async def flag_clock_suspect(self, first_id: str, last_id: str) -> dict[str, int]:
        """Flag the records accepted in the id range ``(first_id, last_id]`` as stamped by a wrong clock.

        Telemetry of quality good becomes uncertain; events and alarm steps get ``data.clock_suspect``.
        Returns how many records of each lane (``telemetry``, ``event``, ``alarm``) were flagged.

        Whether this may rewrite records that may already be uploaded: yes, and only this way. The
        rewrite changes a quality flag and adds one key to ``data``; ids, times and values stay as
        they were, so the upload stays idempotent and nothing is uploaded twice (the outbox cursor
        has moved past what the platform has). The platform's copy of an already uploaded record
        keeps the old flag; what tells the platform is the ``gateway.clock_jump`` event that the
        clock check uploads with the same id range, so it can judge the records it already has.
        The local copy is flagged because the panel and the indicators read it (a figure computed
        from a wrong clock must say so), and records still waiting go up flagged.
        """
        bounds = (first_id, last_id)
        counts: dict[str, int] = {"telemetry": await self._flag_polls_uncertain(first_id, last_id)}
        for lane, table in (("event", "events"), ("alarm", "alarm_log")):
            row = await self._db.read_one(
                f"SELECT count(*) FROM {table} WHERE id > ? AND id <= ?", bounds  # noqa: S608 - fixed names
            )
            counts[lane] = int(row[0]) if row else 0
        for table, lane in (("events", "event"), ("alarm_log", "alarm")):
            if counts[lane]:
                flag: Statement = (f"UPDATE {table} SET data = json_set(data, '$.clock_suspect', json('true'))"  # noqa: S608
                                   " WHERE id > ? AND id <= ?", [bounds])
                await self._db.submit([flag], 1)
        return counts

    async def _flag_polls_uncertain(self, first_id: str, last_id: str) -> int:
        """Readings of quality good in the polls ``(first_id, last_id]`` become uncertain; returns how many."""
        rows = await self._db.read("SELECT id, points FROM polls WHERE id > ? AND id <= ? AND points LIKE ?",
                                   (first_id, last_id, '%"quality":"good"%'))
        updates = []
        flagged = 0
        for rid, text in rows:
            points = orjson.loads(text)
            for point in points:
                if point["quality"] == "good":
                    point["quality"] = "uncertain"
                    flagged += 1
            updates.append((orjson.dumps(points).decode(), rid))
        if updates:
            await self._db.submit([("UPDATE polls SET points = ? WHERE id = ?", updates)], len(updates))
        return flagged

    async def answers(self) -> bool:
        """Whether the reader connection answers ``SELECT 1`` (the service health probe)."""
        row = await self._db.read_one("SELECT 1")
        return row == (1,)
