"""Named reads on ``alarms`` and ``alarm_log``: the panel's lists and search, one alarm, and the alarm stages' reads.

All queries run on the store's reader connection and lean on the ``alarms`` indexes:
``alarms_open(is_open, raised_us)`` serves the live list, ``alarms_raised(raised_us)`` the history
(newest first), ``alarm_log_alarm(alarm_id, id)`` one alarm's steps. Filters are bound parameters
only; free text goes through ``LIKE`` with escaped wildcards.

The live list's change marker is the newest ``alarm_log`` id: every alarm step (raise, ack, resolve,
clear) appends there, and ULIDs grow with time, so ``max(id)`` is a primary-key lookup that changes
exactly when the list may have changed. Browsers poll with it and get 304 when nothing happened.

``AlarmFilter`` is the one filter every alarm list is asked with (the panel builds it from its
``AlarmQuery``); each row comes back as a frozen dataclass (``AlarmRow``, ``AlarmStep``,
``AlarmStatus``, ``AlarmTimes``, ``RestoredAlarm``), never as a positional tuple.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edge.store.codec import split_message
from edge.store.writer import StoreWriter

SEVERITY_RANK = "CASE severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 WHEN 'warning' THEN 2 ELSE 3 END"
STATES: tuple[str, ...] = ("raised", "acknowledged", "escalated", "resolved", "cleared")
_COLUMNS = (
    "alarm_id, code, device_id, severity, state, is_open, message, data, evidence_path, raised_us, updated_us,"
    " acked_us, acked_by, resolved_us, resolved_by, note, cleared_us, escalated_us,"
    # The raise step's message code and params (alarm_log keeps them in its data column; the alarms row
    # only the message in the estate's language), so the panel can word it in the viewer's language.
    " (SELECT l.data FROM alarm_log l WHERE l.alarm_id=alarms.alarm_id AND l.state='raised' ORDER BY l.id LIMIT 1)"
)
_STATUS_COLUMNS = "alarm_id, code, device_id, severity, state, is_open, acked_us, resolved_us, data"
_TIMES_COLUMNS = "alarm_id, code, raised_us, updated_us, acked_us, resolved_us, cleared_us"
FEW_MATCHES = 5000
MAX_DEVICE_IDS = 5000  # an IN (...) list longer than this is not a useful filter anyway


@dataclass(frozen=True, slots=True)
class AlarmFilter:
    open: bool | None = None
    severity: str | None = None
    state: str | None = None
    device_ids: tuple[str, ...] | None = None  # from a device id, a building or a name search
    code: str | None = None
    q: str | None = None  # free text over message, code, device id, note
    since_us: int | None = None
    until_us: int | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.open is not None:
            clauses.append("is_open=?")
            params.append(int(self.open))
        if self.severity:
            clauses.append("severity=?")
            params.append(self.severity)
        if self.state:
            clauses.append("state=?")
            params.append(self.state)
        if self.code:
            clauses.append("code=?")
            params.append(self.code)
        if self.device_ids is not None:
            ids = self.device_ids[:MAX_DEVICE_IDS]
            if ids:
                clauses.append(f"device_id IN ({','.join('?' * len(ids))})")
                params.extend(ids)
            else:
                clauses.append("0")
        if self.since_us is not None:
            clauses.append("raised_us>=?")
            params.append(self.since_us)
        if self.until_us is not None:
            clauses.append("raised_us<?")
            params.append(self.until_us)
        if self.q:
            like = "%" + self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            clauses.append("(message LIKE ? ESCAPE '\\' OR code LIKE ? ESCAPE '\\' OR device_id LIKE ? ESCAPE '\\'"
                           " OR note LIKE ? ESCAPE '\\')")
            params.extend([like] * 4)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params



@dataclass(frozen=True, slots=True)
class AlarmRow:
    alarm_id: str
    code: str
    device_id: str | None
    severity: str
    state: str
    is_open: bool
    message: str
    data: dict[str, Any]
    evidence_path: str | None
    raised_us: int
    updated_us: int
    acked_us: int | None
    acked_by: str | None
    resolved_us: int | None
    resolved_by: str | None
    note: str
    cleared_us: int | None
    escalated_us: int | None
    message_code: str = ""  # from the raise step; "" for an alarm whose raise step is gone
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def can_ack(self) -> bool:
        return self.resolved_us is None and self.acked_us is None and self.state in ("raised", "escalated")

    @property
    def can_resolve(self) -> bool:
        return self.resolved_us is None and self.state != "resolved"


@dataclass(frozen=True, slots=True)
class AlarmStep:
    id: str
    state: str
    ts_us: int
    actor: str
    message: str
    note: str
    evidence_path: str | None


@dataclass(slots=True)
class AlarmPage:
    rows: list[AlarmRow]
    total: int
    offset: int
    limit: int


def _row(r: Sequence[Any]) -> AlarmRow:
    try:
        data = json.loads(r[7]) if r[7] else {}
    except ValueError:
        data = {}
    message_code = ""
    params: dict[str, Any] = {}
    if r[18]:
        with contextlib.suppress(ValueError):  # a damaged data column: the stored message stands
            _details, message_code, params = split_message(r[1], r[18])
    return AlarmRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], data if isinstance(data, dict) else {},
                    r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15], r[16], r[17],
                    message_code=message_code, params=params)


@dataclass(frozen=True, slots=True)
class AlarmStatus:
    """What a disposal step (acknowledge, resolve) checks and copies: one alarm's current state."""

    alarm_id: str
    code: str
    device_id: str | None
    severity: str
    state: str
    is_open: bool
    acked_us: int | None
    resolved_us: int | None
    data: str  # the stored JSON text, copied into the step as it is


@dataclass(frozen=True, slots=True)
class AlarmTimes:
    """One alarm's timeline, for the indicators (closure rate, time to resolve, touched hours)."""

    alarm_id: str
    code: str
    raised_us: int
    updated_us: int
    acked_us: int | None
    resolved_us: int | None
    cleared_us: int | None


@dataclass(frozen=True, slots=True)
class RestoredAlarm:
    """An open alarm as the alarm manager rebuilds it after a restart (with its escalation level)."""

    alarm_id: str
    code: str
    device_id: str | None
    severity: str
    raised_us: int
    acked_us: int | None
    message: str
    data: str  # stored JSON text
    level: int  # highest escalation level reached, 0 if never escalated


@dataclass(frozen=True, slots=True)
class AlarmCount:
    device_id: str | None
    severity: str
    count: int


class AlarmQueries:
    """The named reads on ``alarms`` / ``alarm_log`` (``Store.alarms``)."""

    def __init__(self, writer: StoreWriter) -> None:
        self._db = writer

    # ------------------------------------------------------------------ panel lists
    async def page(self, flt: AlarmFilter, *, limit: int = 50, offset: int = 0, order: str = "time") -> AlarmPage:
        """One page of the alarms ``flt`` matches, newest first (``order="severity"``: most severe first)."""
        where, params = flt.where()
        if order != "severity" and flt.open is None and (flt.q or flt.device_ids is not None):
            page = await self._few_matches(where, params, limit, offset)
            if page is not None:
                return page
        total_row = await self._db.read_one(f"SELECT count(*) FROM alarms{where}", params)  # noqa: S608
        order_by = f"{SEVERITY_RANK}, raised_us DESC" if order == "severity" else "raised_us DESC"
        rows = await self._db.read(
            f"SELECT {_COLUMNS} FROM alarms{where} ORDER BY {order_by}, alarm_id DESC LIMIT ? OFFSET ?",  # noqa: S608
            [*params, limit, offset],
        )
        return AlarmPage([_row(r) for r in rows], int(total_row[0]) if total_row else 0, offset, limit)

    async def _few_matches(self, where: str, params: list[Any], limit: int, offset: int) -> AlarmPage | None:
        """One pass for a filter no index serves (free text, a list of devices), when it matches few alarms.

        Collect the keys of at most ``FEW_MATCHES`` matches in one scan; if that is all of them, the count
        is known and the page is sorted here and fetched by primary key. At 100,000 alarms this is one
        scan (~30 ms) instead of a count scan plus a walk of the time index that fetches every row it
        names (~90 ms). Returns None when there are more matches: then walking the index is cheap,
        because matches are dense and it stops after the first page's worth.
        """
        keys = await self._db.read(f"SELECT raised_us, alarm_id FROM alarms{where} LIMIT ?",  # noqa: S608
                                   [*params, FEW_MATCHES + 1])
        if len(keys) > FEW_MATCHES:
            return None
        keys.sort(reverse=True)
        wanted = [k[1] for k in keys[offset:offset + limit]]
        rows = await self._db.read(
            f"SELECT {_COLUMNS} FROM alarms WHERE alarm_id IN ({','.join('?' * len(wanted))})", wanted  # noqa: S608
        ) if wanted else []
        rows.sort(key=lambda r: (r[9], r[0]), reverse=True)  # raised_us, alarm_id: the same order as the SQL path
        return AlarmPage([_row(r) for r in rows], len(keys), offset, limit)

    async def export_chunk(self, flt: AlarmFilter, after: tuple[int, str] | None, limit: int) -> list[AlarmRow]:
        """Up to ``limit`` matches older than ``after`` (raised_us, alarm_id), newest first: keyset pagination."""
        where, params = flt.where()
        keyset: str = ""
        extra: list[Any] = []
        if after is not None:
            keyset = (" AND " if where else " WHERE ") + "(raised_us < ? OR (raised_us = ? AND alarm_id < ?))"
            extra = [after[0], after[0], after[1]]
        rows = await self._db.read(
            f"SELECT {_COLUMNS} FROM alarms{where}{keyset} ORDER BY raised_us DESC, alarm_id DESC LIMIT ?",  # noqa: S608
            [*params, *extra, limit],
        )
        return [_row(r) for r in rows]

    async def get(self, alarm_id: str) -> tuple[AlarmRow, list[AlarmStep]] | None:
        """One alarm and its steps, oldest step first; None if there is no such alarm."""
        row = await self._db.read_one(f"SELECT {_COLUMNS} FROM alarms WHERE alarm_id=?", (alarm_id,))  # noqa: S608
        if row is None:
            return None
        steps = await self._db.read(
            "SELECT id, state, ts_us, actor, message, note, evidence_path FROM alarm_log WHERE alarm_id=? ORDER BY id",
            (alarm_id,),
        )
        return _row(row), [AlarmStep(*s) for s in steps]

    async def change_marker(self) -> str:
        """The newest alarm step's id ("0" before the first): changes exactly when any alarm list may have."""
        row = await self._db.read_one("SELECT max(id) FROM alarm_log")
        return str(row[0]) if row and row[0] else "0"

    async def codes(self, limit: int = 200) -> list[str]:
        """Distinct alarm codes, by skipping along the ``alarms_key(code, ...)`` index."""
        out: list[str] = []
        code = ""
        while len(out) < limit:
            row = await self._db.read_one("SELECT min(code) FROM alarms WHERE code > ?", (code,))
            if row is None or row[0] is None:
                break
            code = row[0]
            out.append(code)
        return out

    async def open_of_device(self, device_id: str, limit: int = 20) -> list[AlarmRow]:
        """A device's open alarms, newest first."""
        rows = await self._db.read(
            f"SELECT {_COLUMNS} FROM alarms WHERE is_open=1 AND device_id=? ORDER BY raised_us DESC LIMIT ?",  # noqa: S608
            (device_id, limit))
        return [_row(r) for r in rows]

    async def open_counts(self) -> list[AlarmCount]:
        """Open alarms per (device, severity), from one pass over the open alarms."""
        rows = await self._db.read(
            "SELECT device_id, severity, count(*) FROM alarms WHERE is_open=1 GROUP BY device_id, severity")
        return [AlarmCount(device_id, severity, int(count)) for device_id, severity, count in rows]

    # ------------------------------------------------------------------ alarm stages
    async def status(self, alarm_id: str) -> AlarmStatus | None:
        """One alarm's current state (what a disposal step checks), None if there is no such alarm."""
        row = await self._db.read_one(f"SELECT {_STATUS_COLUMNS} FROM alarms WHERE alarm_id=?", (alarm_id,))  # noqa: S608
        if row is None:
            return None
        alarm_id, code, device_id, severity, state, is_open, acked_us, resolved_us, data = row
        return AlarmStatus(alarm_id, code, device_id, severity, state, bool(is_open), acked_us, resolved_us, data)

    async def open_for_restore(self) -> list[RestoredAlarm]:
        """The open alarms, oldest first, with acknowledgement and the highest escalation level reached."""
        rows = await self._db.read(
            "SELECT a.alarm_id, a.code, a.device_id, a.severity, a.raised_us, a.acked_us, a.message, a.data,"
            " (SELECT max(CAST(json_extract(l.data, '$.level') AS INTEGER)) FROM alarm_log l"
            "   WHERE l.alarm_id = a.alarm_id AND l.state = 'escalated')"
            " FROM alarms a WHERE a.is_open = 1 ORDER BY a.raised_us"
        )
        return [RestoredAlarm(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], int(r[8] or 0)) for r in rows]

    async def raised_between(self, start_us: int, end_us: int) -> list[AlarmTimes]:
        """Alarms raised in ``[start_us, end_us)``."""
        rows = await self._db.read(f"SELECT {_TIMES_COLUMNS} FROM alarms WHERE raised_us >= ? AND raised_us < ?",  # noqa: S608
                                   (start_us, end_us))
        return [AlarmTimes(*r) for r in rows]

    async def updated_after(self, after_us: int) -> list[AlarmTimes]:
        """Alarms whose row changed after ``after_us`` (any step)."""
        rows = await self._db.read(f"SELECT {_TIMES_COLUMNS} FROM alarms WHERE updated_us > ?",  # noqa: S608
                                   (after_us,))
        return [AlarmTimes(*r) for r in rows]

    async def last_update_us(self) -> int:
        """When any alarm last changed (0 with no alarms)."""
        row = await self._db.read_one("SELECT max(updated_us) FROM alarms")
        return int(row[0]) if row and row[0] is not None else 0
