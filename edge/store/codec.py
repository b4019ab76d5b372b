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
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any, cast

import orjson

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


# Telemetry is stored as it goes up: one row per device poll (``polls``), its points already in
# their upload form, a JSON array of ``{"point", "value", "unit", "quality"}`` (ASCII units, quality
# labels, null for a value JSON cannot carry). Why: at 15,000 readings a second a row per reading
# made the writer insert, the uplink re-read and regroup, and the indicator fold count 15,000 rows
# a second; a row per poll is 500, and the uplink splices the stored array into its request as it
# is (``orjson.Fragment``), never decoding it. The canonical point names and units of a poll (its
# *shape*: ``[[point, unit], ...]`` in the poll's order) are kept once per distinct shape in
# ``poll_shapes``, under an id derived from the shape itself (``shape_id``), so any connection can
# insert a shape without asking which id it got; the indicator fold reads them (it works in
# canonical units: ``m³``, not the upload's ``m3``).
MAX_POINTS = 1000  # points per record (the v3 schema's maxItems); a longer poll is stored as several
_QUALITY_OF_LABEL = {q.label: int(q) for q in Quality}


def shape_id(names: str) -> int:
    """The ``poll_shapes`` id of a shape's JSON text: 63 bits of its BLAKE2b digest (collisions: none in practice)."""
    return int.from_bytes(hashlib.blake2b(names.encode(), digest_size=8).digest(), "big") >> 1


def shape_names(points: Sequence[tuple[str, str]]) -> str:
    """A shape's stored text: the JSON array of ``[point, unit]`` pairs (canonical units)."""
    return json.dumps(points, ensure_ascii=False, separators=(",", ":"))


_SHAPE_KEY = itemgetter(1, 3)  # Reading.point, Reading.unit
_POLL_KEY = itemgetter(0, 4)  # Reading.device_id, Reading.ts


def poll_rows(readings: Sequence[Reading], ids_for: Callable[[int], Sequence[str]],
              shapes: dict[tuple[tuple[str, str], ...], tuple[int, str]],
              ) -> tuple[list[SqlRow], list[tuple[int, str]]]:
    """``polls`` rows for ``readings`` and the shapes they use: the store's ingest hot path.

    A poll is a run of consecutive readings of one device and one instant (a driver hands a poll
    over in one piece), cut every ``MAX_POINTS``. ``ids_for(n)`` mints the rows' ids. ``shapes``
    caches each shape's ``(id, names)`` (the writer's, across calls); the second list returns the
    shapes of this call, for ``INSERT OR IGNORE``. orjson writes a non-finite value as null.
    """
    polls: list[Sequence[Reading]] = []
    for _key, group in groupby(readings, _POLL_KEY):
        run = list(group)
        if len(run) <= MAX_POINTS:
            polls.append(run)
        else:
            polls.extend(run[start:start + MAX_POINTS] for start in range(0, len(run), MAX_POINTS))
    ids = ids_for(len(polls))
    rows: list[SqlRow] = []
    append = rows.append
    used: dict[int, str] = {}
    micros: dict[int, int] = {}  # a timestamp object's microseconds (polls of one hand-over often share one)
    labels = _QUALITY_LABELS
    dump = orjson.dumps
    for poll, rid in zip(polls, ids, strict=True):
        key = tuple(map(_SHAPE_KEY, poll))
        shape = shapes.get(key)
        if shape is None:
            names = shape_names(key)
            shape = shapes[key] = (shape_id(names), names)
        used[shape[0]] = shape[1]
        try:
            points = dump([{"point": r.point, "value": r.value,
                            "unit": r.unit if r.unit.isascii() else upload_unit(r.unit), "quality": labels[r.quality]}
                           for r in poll])
        except TypeError:  # a value orjson refuses (a NumPy scalar, an integer beyond 64 bits): as a float
            points = dump([{"point": r.point, "value": _json_number(r.value), "unit": upload_unit(r.unit),
                            "quality": labels[r.quality]} for r in poll])
        first = poll[0]
        ts = first.ts
        us = micros.get(id(ts))
        if us is None:
            us = micros[id(ts)] = to_us(ts)
        append((rid, first.device_id, us, len(poll), shape[0], points.decode()))
    return rows, list(used.items())


def _json_number(value: object) -> float | None:
    """A reading's value as JSON can carry it: a float (NumPy scalars and big integers too), else null."""
    try:
        number = float(value)  # type: ignore[arg-type]  # anything float() takes; the rest is null
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


class StoredJson:
    """JSON text that goes into an upload as it is: ``json_default`` hands it to orjson as a ``Fragment``.

    A plain class, not a dataclass: orjson encodes dataclasses itself and would never ask ``default``.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoredJson) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"StoredJson({self.text!r})"


def json_default(value: object) -> object:
    """Orjson's ``default`` for uploads: stored JSON is spliced in, anything else is refused (TypeError)."""
    if isinstance(value, StoredJson):
        return orjson.Fragment(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def telemetry_payload(row: SqlRow) -> dict[str, Any]:
    """The v3 record of a stored poll ``(id, device_id, ts_us, points)``: its points spliced in unparsed."""
    return {"id": row[0], "device_id": row[1], "ts": iso(row[2]), "points": StoredJson(row[3])}


def record_points(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A telemetry record's points as a list, parsed from the stored text if the record still splices it."""
    points = record["points"]
    if isinstance(points, StoredJson):
        points = record["points"] = orjson.loads(points.text)
    return cast(list[dict[str, Any]], points)


def plain(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with nothing left to splice (for the schema check, the dead-letter table, plain json)."""
    if isinstance(record.get("points"), StoredJson):
        record_points(record)
    return record


def quality_label(quality: int) -> str:
    """The upload label of a stored quality number (an unknown number reads as bad)."""
    return _QUALITY_LABELS.get(quality, "bad")


def quality_of(label: str) -> int:
    """The stored quality label's ``Quality`` value."""
    return _QUALITY_OF_LABEL[label]


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
    Lane.TELEMETRY: "SELECT id, device_id, ts_us, points FROM polls",
    Lane.EVENT: "SELECT id, code, ts_us, device_id, severity, message, data, evidence_path FROM events",
    Lane.ALARM: (
        "SELECT id, alarm_id, code, state, ts_us, device_id, severity, actor, message, note, data, evidence_path"
        " FROM alarm_log"
    ),
    Lane.INDICATOR: "SELECT id, payload FROM indicators",
    Lane.DEVICE: "SELECT id, payload FROM devices",
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

