"""Record <-> row and row <-> upload payload conversions for each lane, in one place.

The store writes rows, the outbox turns rows into the JSON payloads the platform receives
(see ``edge/schemas`` for their JSON Schema, version 3). Keeping both directions here means one
module changes when a field is added.

Messages: an event's or alarm step's ``message_code`` and ``params`` (``edge.messages``) are kept in
its ``data`` column under the reserved key ``_message`` (no table migration: rows written before v2
simply lack it, and their payload falls back to ``message_code = code``, ``params = {}``). The
payload lifts them out, so ``data`` upstream holds only the technical detail.

Evidence (a detection's JPEG) is uploaded once and referenced by id: the id is the SHA-256 of the
bytes, so the event and the alarm step that carry the same picture reference the same upload
(``evidence_ref``; the uplink sends each picture before the first record that names it).
A record whose panel copy differs from its uploaded copy (``Event.evidence_local``, privacy) has
two files, ``<id>.jpg`` (uploaded) and ``<id>.local.jpg`` (shown); its ``evidence_path`` column
names the shown one, and the outbox loads the uploaded one (``upload_evidence_name``), so the id
always hashes the bytes that are sent. A missing uploaded copy sends no picture rather than the
local one (``evidence_file_names``).

``estate_id`` and ``gateway_id`` are not stored per row (one store serves one gateway); the uplink
stamps them on every payload before it leaves (``Uplink``), so each record names its origin.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from edge.clock import to_us
from edge.records import AlarmRecord, DeviceRecord, Event, IndicatorRecord, Lane, Quality, Reading
from edge.store.connection import SqlRow

_QUALITY_LABELS = {int(q): q.label for q in Quality}

# Uploads write units in one ASCII notation (m3, m3/h, degC), whatever the gateway's canonical
# spelling inside (edge.units keeps m³, °C). One dict lookup per reading on the hot path.
_ASCII_UNITS: dict[str, str] = {"m³": "m3", "m³/h": "m3/h", "m³/s": "m3/s", "m³/min": "m3/min", "°C": "degC",
                                "℃": "degC", "°": "deg", "mH₂O": "mH2O", "mmH₂O": "mmH2O", "kgf/cm²": "kgf/cm2"}
_UNIT_FIELDS = ("unit", "unit_from", "unit_to")


def upload_unit(unit: str) -> str:
    """A unit as uploads write it: ASCII only (``m³/h`` -> ``m3/h``, ``°C`` -> ``degC``)."""
    ascii_unit = _ASCII_UNITS.get(unit)
    if ascii_unit is not None:
        return ascii_unit
    if unit.isascii():
        return unit
    out = unit.replace("°C", "degC").replace("℃", "degC").replace("°", "deg")
    return out.translate(str.maketrans("²³₂", "232"))


def _ascii_units(values: dict[str, Any]) -> dict[str, Any]:
    for name in _UNIT_FIELDS:
        unit = values.get(name)
        if isinstance(unit, str) and not unit.isascii():
            values[name] = upload_unit(unit)
    return values


_ISO_SECONDS: dict[int, str] = {}  # whole second -> "YYYY-MM-DDTHH:MM:SS" (bounded, see iso)


def iso(us: int) -> str:
    """Microseconds since the epoch -> ISO 8601 UTC with milliseconds and a 'Z' (what the platform expects).

    On the drain's hot path (one call per reading): the date and time of each whole second are
    formatted once and the milliseconds appended (truncated, as ``datetime.isoformat`` does), about
    ten times cheaper than a datetime per reading. Same text as
    ``datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="milliseconds")`` with ``Z``.
    """
    seconds, micros = divmod(us, 1_000_000)
    prefix = _ISO_SECONDS.get(seconds)
    if prefix is None:
        if len(_ISO_SECONDS) >= 8192:
            _ISO_SECONDS.clear()
        prefix = _ISO_SECONDS[seconds] = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{prefix}.{micros // 1000:03d}Z"


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


def reading_rows(readings: Sequence[Reading], ids: Sequence[str]) -> list[SqlRow]:
    """Rows for ``readings`` with their new ``ids``: the store's ingest hot path.

    The readings of one poll share one timestamp object, so each distinct one is converted once
    (keyed by identity: hashing an aware datetime costs more than converting it). Quality goes in
    as a plain int: sqlite3 adapts int subclasses such as IntEnum the slow way.
    """
    micros: dict[int, int] = {}
    rows: list[SqlRow] = []
    append = rows.append
    for r, rid in zip(readings, ids, strict=True):
        ts = r.ts
        us = micros.get(id(ts))
        if us is None:
            us = micros[id(ts)] = to_us(ts)
        append((rid, r.device_id, r.point, r.value, r.unit, int(r.quality), us))
    return rows


MESSAGE_KEY = "_message"  # reserved key of the data column: {"code": message_code, "params": {...}}


def _data_column(data: dict[str, Any], message_code: str, params: dict[str, Any]) -> str:
    if not message_code:
        return dumps(data)
    return dumps({**data, MESSAGE_KEY: {"code": message_code, "params": params}})


def split_message(code: str, data_column: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """``(data, message_code, params)`` of a stored data column (see the module docstring)."""
    data = json.loads(data_column)
    stored = data.pop(MESSAGE_KEY, None) if isinstance(data, dict) else None
    if isinstance(stored, dict) and isinstance(stored.get("code"), str):
        params = stored.get("params")
        return data, stored["code"], params if isinstance(params, dict) else {}
    return data, code, {}


def event_row(e: Event, record_id: str, evidence_path: str | None) -> SqlRow:
    return (record_id, e.code, to_us(e.ts), e.device_id, str(e.severity), e.message,
            _data_column(e.data, e.message_code, e.params), evidence_path)


def alarm_row(a: AlarmRecord, record_id: str, evidence_path: str | None) -> SqlRow:
    return (
        record_id, a.alarm_id, a.code, str(a.state), to_us(a.ts), a.device_id, str(a.severity),
        a.actor, a.message, a.note, _data_column(a.data, a.message_code, a.params), evidence_path,
    )


def indicator_payload(r: IndicatorRecord, record_id: str) -> dict[str, Any]:
    return {
        "id": record_id,
        "estate_id": r.estate_id,
        "gateway_id": r.gateway_id,
        "code": r.code,
        "granularity": r.granularity,
        "period_start": iso(to_us(r.period_start)),
        "period_end": iso(to_us(r.period_end)),
        "value": r.value,
        "unit": r.unit,
        "samples": r.samples,
        "coverage": r.coverage,
        "clauses": list(r.clauses),
        "dimensions": dict(r.dimensions),
        "key": r.key,
        "version": r.version,
        "computed_at": iso(to_us(r.computed_at)) if r.computed_at else None,
    }


def indicator_row(r: IndicatorRecord, record_id: str) -> SqlRow:
    return (
        record_id, r.key, r.version, r.code, r.granularity, to_us(r.period_start), to_us(r.period_end),
        r.value, r.unit, r.samples, r.coverage, dumps(indicator_payload(r, record_id)),
    )


def device_payload(r: DeviceRecord, record_id: str) -> dict[str, Any]:
    return {"id": record_id, "device_id": r.device_id, "version": r.version, "ts": iso(to_us(r.ts)), **r.info}


def device_row(r: DeviceRecord, record_id: str) -> SqlRow:
    return (record_id, r.device_id, r.version, to_us(r.ts), dumps(device_payload(r, record_id)))


# Columns the outbox selects per lane, and how a row becomes an upload payload.
LANE_QUERIES: dict[Lane, str] = {
    Lane.TELEMETRY: "SELECT id, device_id, point, value, unit, quality, ts_us FROM readings",
    Lane.EVENT: "SELECT id, code, ts_us, device_id, severity, message, data, evidence_path FROM events",
    Lane.ALARM: (
        "SELECT id, alarm_id, code, state, ts_us, device_id, severity, actor, message, note, data, evidence_path"
        " FROM alarm_log"
    ),
    Lane.INDICATOR: "SELECT id, payload FROM indicators",
    Lane.DEVICE: "SELECT id, payload FROM devices",
}


# Telemetry goes up as one record per device poll (contract v3). The store keeps one row per reading,
# each with its own id, and nothing about that changes (durability, cursor, eviction work on
# readings); the outbox groups a lease's consecutive rows of one device and one instant (a Modbus
# poll stamps all its points with one instant and commits them in one transaction) into a record
# whose id is the poll's first reading's id and whose cursor position is its last reading's.
#
# Idempotency: a resend after a crash must group the same readings again. Leases start where the
# previous batch ended, always the end of a record, and a group is the maximal run of consecutive
# rows with one (device, ts), cut every MAX_POINTS rows counted from the run's start; so grouping
# depends on the rows alone, except at the end of a lease, where the last run may continue beyond
# what was read. That run is held back (it goes in a later lease) when the read was cut by its
# limit, and while its instant is within SEAL_S of now, so a poll whose readings reach the store
# in two commits (an OPC UA subscription delivering two notifications with one source timestamp)
# is never sent half under an id that later names the whole. A run with newer rows after it is complete.
MAX_POINTS = 1000  # points per record (the v3 schema's maxItems); a longer run becomes several records
SEAL_S = 1.0  # a trailing run this close to now (either way) may still grow: it waits for a later lease
_INF = float("inf")


def telemetry_polls(rows: Sequence[SqlRow], *, cut: bool, now_us: int) -> list[tuple[str, str, dict[str, Any]]]:
    """``(record id, last reading id, v3 payload)`` for each complete poll among ``rows`` (in id order).

    ``cut``: the read stopped at its limit, so the last run may continue. ``now_us``: the wall clock,
    to judge whether the last run can still grow. The rows after the last record returned are left
    for a later lease. On the drain's hot path: one dict per point, one timestamp per poll; a value
    JSON cannot carry (infinity; SQLite already stores NaN as NULL) goes up as null (its quality says bad).
    """
    out: list[tuple[str, str, dict[str, Any]]] = []
    append = out.append
    labels = _QUALITY_LABELS
    count = len(rows)
    start = 0
    while start < count:
        first = rows[start]
        device_id, ts_us = first[1], first[6]
        end, stop = start + 1, min(count, start + MAX_POINTS)  # a run longer than MAX_POINTS: chunks from its start
        while end < stop and rows[end][6] == ts_us and rows[end][1] == device_id:
            end += 1
        if end == start + 1:  # one reading (the same dict as below, without a comprehension's cost per record)
            value, unit = first[3], first[4]
            points = [{"point": first[2], "value": value if value is None or -_INF < value < _INF else None,
                       "unit": unit if unit.isascii() else upload_unit(unit), "quality": labels[first[5]]}]
        else:
            points = [{"point": r[2], "value": r[3] if r[3] is None or -_INF < r[3] < _INF else None,
                       "unit": r[4] if r[4].isascii() else upload_unit(r[4]), "quality": labels[r[5]]}
                      for r in rows[start:end]]
        append((first[0], rows[end - 1][0], {"id": first[0], "device_id": device_id, "ts": iso(ts_us),
                                             "points": points}))
        start = end
    if out:
        may_grow = len(out[-1][2]["points"]) < MAX_POINTS and (cut or abs(now_us - rows[-1][6]) < SEAL_S * 1_000_000)
        if may_grow:
            out.pop()
    return out


def telemetry_payload(row: SqlRow) -> dict[str, Any]:
    rid, device_id, point, value, unit, quality, ts_us = row
    return {
        "id": rid, "device_id": device_id, "point": point, "value": value,
        "unit": unit if unit.isascii() else upload_unit(unit), "quality": _QUALITY_LABELS[quality], "ts": iso(ts_us),
    }


EVIDENCE_ID_PREFIX = "sha256-"


def evidence_id(jpeg: bytes) -> str:
    """The id of an evidence picture: its content hash, so identical pictures share one upload."""
    return EVIDENCE_ID_PREFIX + hashlib.sha256(jpeg).hexdigest()


LOCAL_EVIDENCE_SUFFIX = ".local.jpg"


def evidence_name(record_id: str, *, local: bool = False) -> str:
    """File name of a record's evidence: the uploaded copy, or its separate panel copy."""
    return f"{record_id}{LOCAL_EVIDENCE_SUFFIX if local else '.jpg'}"


def upload_evidence_name(name: str) -> str:
    """The uploaded copy's file for the ``evidence_path`` ``name`` (itself unless it is a panel copy)."""
    if name.endswith(LOCAL_EVIDENCE_SUFFIX):
        return name[: -len(LOCAL_EVIDENCE_SUFFIX)] + ".jpg"
    return name


def panel_copy_name(name: str) -> str | None:
    """The separate panel copy that replaces the uploaded copy ``name`` on the box, if one may exist."""
    if name.endswith(LOCAL_EVIDENCE_SUFFIX) or not name.endswith(".jpg"):
        return None
    return name[: -len(".jpg")] + LOCAL_EVIDENCE_SUFFIX


def evidence_file_names(name: str) -> tuple[str, ...]:
    """Every file a record with ``evidence_path`` ``name`` owns (evicted together)."""
    upload = upload_evidence_name(name)
    return (name,) if upload == name else (name, upload)


def evidence_ref(jpeg: bytes) -> dict[str, Any]:
    """What a record carries instead of the picture: its id, type and size."""
    return {"id": evidence_id(jpeg), "content_type": "image/jpeg", "bytes": len(jpeg)}


def event_payload(row: SqlRow, evidence: bytes | None) -> dict[str, Any]:
    rid, code, ts_us, device_id, severity, message, data, _path = row
    details, message_code, params = split_message(code, data)
    out: dict[str, Any] = {
        "id": rid, "code": code, "ts": iso(ts_us), "device_id": device_id, "severity": severity,
        "message": message, "message_code": message_code, "params": _ascii_units(params),
        "data": _ascii_units(details),
    }
    if evidence:
        out["evidence"] = evidence_ref(evidence)
    return out


def alarm_payload(row: SqlRow, evidence: bytes | None) -> dict[str, Any]:
    rid, alarm_id, code, state, ts_us, device_id, severity, actor, message, note, data, _path = row
    details, message_code, params = split_message(code, data)
    out: dict[str, Any] = {
        "id": rid, "alarm_id": alarm_id, "code": code, "state": state, "ts": iso(ts_us),
        "device_id": device_id, "severity": severity, "actor": actor, "message": message,
        "message_code": message_code, "params": _ascii_units(params), "note": note, "data": _ascii_units(details),
    }
    if evidence:
        out["evidence"] = evidence_ref(evidence)
    return out

