"""Record <-> row and row <-> upload payload conversions for each lane, in one place.

The store writes rows, the outbox turns rows into the JSON payloads the platform receives
(see ``edge/schemas`` for their JSON Schema). Keeping both directions here means one module
changes when a field is added.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from edge.clock import from_us, to_us
from edge.records import AlarmRecord, Event, IndicatorRecord, Lane, Quality, Reading

_QUALITY_LABELS = {int(q): q.label for q in Quality}


def iso(us: int) -> str:
    """Microseconds since the epoch -> ISO 8601 UTC with a 'Z' (what the platform expects)."""
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


def reading_rows(readings: Sequence[Reading], ids: Sequence[str]) -> list[tuple]:
    """Rows for ``readings`` with their new ``ids``: the store's ingest hot path.

    The readings of one poll share one timestamp object, so each distinct one is converted once
    (keyed by identity: hashing an aware datetime costs more than converting it). Quality goes in
    as a plain int: sqlite3 adapts int subclasses such as IntEnum the slow way.
    """
    micros: dict[int, int] = {}
    rows = []
    append = rows.append
    for r, rid in zip(readings, ids, strict=True):
        ts = r.ts
        us = micros.get(id(ts))
        if us is None:
            us = micros[id(ts)] = to_us(ts)
        append((rid, r.device_id, r.point, r.value, r.unit, int(r.quality), us))
    return rows


def event_row(e: Event, record_id: str, evidence_path: str | None) -> tuple:
    return (record_id, e.code, to_us(e.ts), e.device_id, str(e.severity), e.message, dumps(e.data), evidence_path)


def alarm_row(a: AlarmRecord, record_id: str, evidence_path: str | None) -> tuple:
    return (
        record_id, a.alarm_id, a.code, str(a.state), to_us(a.ts), a.device_id, str(a.severity),
        a.actor, a.message, a.note, dumps(a.data), evidence_path,
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


def indicator_row(r: IndicatorRecord, record_id: str) -> tuple:
    return (
        record_id, r.key, r.version, r.code, r.granularity, to_us(r.period_start), to_us(r.period_end),
        r.value, r.unit, r.samples, r.coverage, dumps(indicator_payload(r, record_id)),
    )


# Columns the outbox selects per lane, and how a row becomes an upload payload.
LANE_QUERIES: dict[Lane, str] = {
    Lane.TELEMETRY: "SELECT id, device_id, point, value, unit, quality, ts_us FROM readings",
    Lane.EVENT: "SELECT id, code, ts_us, device_id, severity, message, data, evidence_path FROM events",
    Lane.ALARM: (
        "SELECT id, alarm_id, code, state, ts_us, device_id, severity, actor, message, note, data, evidence_path"
        " FROM alarm_log"
    ),
    Lane.INDICATOR: "SELECT id, payload FROM indicators",
}


def telemetry_payload(row: tuple) -> dict[str, Any]:
    rid, device_id, point, value, unit, quality, ts_us = row
    return {
        "id": rid, "device_id": device_id, "point": point, "value": value, "unit": unit,
        "quality": _QUALITY_LABELS[quality], "ts": iso(ts_us),
    }


def event_payload(row: tuple, evidence: dict[str, str] | None) -> dict[str, Any]:
    rid, code, ts_us, device_id, severity, message, data, _path = row
    out: dict[str, Any] = {
        "id": rid, "code": code, "ts": iso(ts_us), "device_id": device_id, "severity": severity,
        "message": message, "data": json.loads(data),
    }
    if evidence:
        out["evidence"] = evidence
    return out


def alarm_payload(row: tuple, evidence: dict[str, str] | None) -> dict[str, Any]:
    rid, alarm_id, code, state, ts_us, device_id, severity, actor, message, note, data, _path = row
    out: dict[str, Any] = {
        "id": rid, "alarm_id": alarm_id, "code": code, "state": state, "ts": iso(ts_us),
        "device_id": device_id, "severity": severity, "actor": actor, "message": message, "note": note,
        "data": json.loads(data),
    }
    if evidence:
        out["evidence"] = evidence
    return out


def reading_from_row(row: tuple) -> Reading:
    rid, device_id, point, value, unit, quality, ts_us = row
    return Reading(device_id=device_id, point=point, value=value, unit=unit, ts=from_us(ts_us),
                   quality=Quality(quality), id=rid)

