"""Reading alarms for the panel: the live list, history search, one alarm's steps, CSV export.

All queries run on the store's reader connection and lean on the ``alarms`` indexes:
``alarms_open(is_open, raised_us)`` serves the live list, ``alarms_raised(raised_us)`` the history
(newest first), ``alarm_log_alarm(alarm_id, id)`` one alarm's steps. Filters are bound parameters
only; free text goes through ``LIKE`` with escaped wildcards.

The live list's change marker is the newest ``alarm_log`` id: every alarm step (raise, ack, resolve,
clear) appends there, and ULIDs grow with time, so ``max(id)`` is a primary-key lookup that changes
exactly when the list may have changed. Browsers poll with it and get 304 when nothing happened.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge.store import Store
from edge.store.codec import split_message

SEVERITY_RANK = "CASE severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 WHEN 'warning' THEN 2 ELSE 3 END"
STATES: tuple[str, ...] = ("raised", "acknowledged", "escalated", "resolved", "cleared")
_COLUMNS = (
    "alarm_id, code, device_id, severity, state, is_open, message, data, evidence_path, raised_us, updated_us,"
    " acked_us, acked_by, resolved_us, resolved_by, note, cleared_us, escalated_us,"
    # The raise step's message code and params (alarm_log keeps them in its data column; the alarms row
    # only the message in the estate's language), so the panel can word it in the viewer's language.
    " (SELECT l.data FROM alarm_log l WHERE l.alarm_id=alarms.alarm_id AND l.state='raised' ORDER BY l.id LIMIT 1)"
)
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
    message_code, params = "", {}
    if r[18]:
        with contextlib.suppress(ValueError):  # a damaged data column: the stored message stands
            _details, message_code, params = split_message(r[1], r[18])
    return AlarmRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], data if isinstance(data, dict) else {},
                    *r[8:18], message_code=message_code, params=params)


async def list_alarms(store: Store, flt: AlarmFilter, *, limit: int = 50, offset: int = 0,
                      order: str = "time") -> AlarmPage:
    where, params = flt.where()
    if order != "severity" and flt.open is None and (flt.q or flt.device_ids is not None):
        page = await _few_matches(store, where, params, limit, offset)
        if page is not None:
            return page
    total_row = await store.read_one(f"SELECT count(*) FROM alarms{where}", params)  # noqa: S608
    order_by = f"{SEVERITY_RANK}, raised_us DESC" if order == "severity" else "raised_us DESC"
    rows = await store.read(
        f"SELECT {_COLUMNS} FROM alarms{where} ORDER BY {order_by}, alarm_id DESC LIMIT ? OFFSET ?",  # noqa: S608
        [*params, limit, offset],
    )
    return AlarmPage([_row(r) for r in rows], int(total_row[0]) if total_row else 0, offset, limit)


async def _few_matches(store: Store, where: str, params: list[Any], limit: int, offset: int) -> AlarmPage | None:
    """One pass for a filter no index serves (free text, a list of devices), when it matches few alarms.

    Collect the keys of at most ``FEW_MATCHES`` matches in one scan; if that is all of them, the count
    is known and the page is sorted here and fetched by primary key. At 100,000 alarms this is one
    scan (~30 ms) instead of a count scan plus a walk of the time index that fetches every row it
    names (~90 ms). Returns None when there are more matches: then walking the index is cheap,
    because matches are dense and it stops after the first page's worth.
    """
    keys = await store.read(f"SELECT raised_us, alarm_id FROM alarms{where} LIMIT ?",  # noqa: S608
                            [*params, FEW_MATCHES + 1])
    if len(keys) > FEW_MATCHES:
        return None
    keys.sort(reverse=True)
    wanted = [k[1] for k in keys[offset:offset + limit]]
    rows = await store.read(
        f"SELECT {_COLUMNS} FROM alarms WHERE alarm_id IN ({','.join('?' * len(wanted))})", wanted  # noqa: S608
    ) if wanted else []
    rows.sort(key=lambda r: (r[9], r[0]), reverse=True)  # raised_us, alarm_id: the same order as the SQL path
    return AlarmPage([_row(r) for r in rows], len(keys), offset, limit)


async def get_alarm(store: Store, alarm_id: str) -> tuple[AlarmRow, list[AlarmStep]] | None:
    row = await store.read_one(f"SELECT {_COLUMNS} FROM alarms WHERE alarm_id=?", (alarm_id,))  # noqa: S608
    if row is None:
        return None
    steps = await store.read(
        "SELECT id, state, ts_us, actor, message, note, evidence_path FROM alarm_log WHERE alarm_id=? ORDER BY id",
        (alarm_id,),
    )
    return _row(row), [AlarmStep(*s) for s in steps]


async def change_marker(store: Store) -> str:
    row = await store.read_one("SELECT max(id) FROM alarm_log")
    return str(row[0]) if row and row[0] else "0"


async def codes(store: Store, limit: int = 200) -> list[str]:
    """Distinct alarm codes, by skipping along the ``alarms_key(code, ...)`` index."""
    out: list[str] = []
    code = ""
    while len(out) < limit:
        row = await store.read_one("SELECT min(code) FROM alarms WHERE code > ?", (code,))
        if row is None or row[0] is None:
            break
        code = row[0]
        out.append(code)
    return out


CSV_HEADER = ("alarm_id", "code", "device_id", "device_name", "building", "severity", "state", "message",
              "raised_at", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "note", "cleared_at")


def _cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas (CSV injection): a cell starting with = + - @ gets a leading quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def export_csv(store: Store, flt: AlarmFilter, *, names: dict[str, str], buildings: dict[str, str],
                     fmt: Any, max_rows: int = 1_000_000, chunk: int = 2000) -> AsyncIterator[str]:
    """CSV text in chunks (keyset pagination, newest first); UTF-8 BOM first so Excel reads Chinese right."""
    where, params = flt.where()
    yield "\ufeff"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    cursor: tuple[int, str] | None = None
    sent = 0
    while sent < max_rows:
        keyset, extra = "", []
        if cursor is not None:
            keyset = (" AND " if where else " WHERE ") + "(raised_us < ? OR (raised_us = ? AND alarm_id < ?))"
            extra = [cursor[0], cursor[0], cursor[1]]
        rows = await store.read(
            f"SELECT {_COLUMNS} FROM alarms{where}{keyset} ORDER BY raised_us DESC, alarm_id DESC LIMIT ?",  # noqa: S608
            [*params, *extra, min(chunk, max_rows - sent)],
        )
        if not rows:
            break
        for r in rows:
            a = _row(r)
            writer.writerow([_cell(v) for v in (
                a.alarm_id, a.code, a.device_id or "", names.get(a.device_id or "", ""),
                buildings.get(a.device_id or "", ""), a.severity, a.state, a.message, fmt(a.raised_us),
                fmt(a.acked_us), a.acked_by or "", fmt(a.resolved_us), a.resolved_by or "", a.note, fmt(a.cleared_us),
            )])
        sent += len(rows)
        last = _row(rows[-1])
        cursor = (last.raised_us, last.alarm_id)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
