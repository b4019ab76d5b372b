"""Payload validation for the simulator: the gateway's own published JSON Schemas (contract v2 and v3).

The platform must judge records by the same contract the gateway documents (``edge/schemas``), in
the version the batch names; a minimal structural check stands in only where that package cannot
be imported.
"""

from __future__ import annotations

from typing import Any

KINDS = ("telemetry", "event", "alarm", "indicator", "device")
SCHEMA_VERSION = 3  # the newest contract version (edge.schemas.SCHEMA_VERSION when it can be imported)

_REQUIRED: dict[str, tuple[str, ...]] = {
    "telemetry": ("id", "device_id", "ts", "points"),
    "event": ("id", "code", "ts", "severity"),
    "alarm": ("id", "alarm_id", "code", "state", "ts", "severity"),
    "indicator": ("id", "estate_id", "gateway_id", "code", "granularity", "period_start", "period_end", "clauses"),
    "device": ("id", "estate_id", "gateway_id", "device_id", "version"),
}


def _schema_validator() -> Any:
    try:
        from edge import schemas  # the gateway's published contract
    except ImportError:
        return None
    return getattr(schemas, "record_errors", None)


def record_error(kind: str, record: Any, version: int = SCHEMA_VERSION) -> str | None:
    """Why ``record`` is invalid for ``kind`` in contract ``version``, or None when it is fine."""
    if not isinstance(record, dict):
        return "record must be a JSON object"
    validator = _schema_validator()
    if validator is not None:
        errors = validator(kind, record, version)
        return "; ".join(errors) if errors else None
    required = ("id", "device_id", "point", "value", "unit", "quality", "ts") if kind == "telemetry" and version == 2 \
        else _REQUIRED[kind]
    missing = [f for f in required if f not in record]
    if missing:
        return f"missing field(s): {', '.join(missing)}"
    if not isinstance(record.get("id"), str) or len(record["id"]) != 26:
        return "id must be a 26-character ULID"
    if kind == "telemetry" and version == 2 and record["value"] is not None \
            and not isinstance(record["value"], int | float):
        return "value must be a number or null"
    if kind == "telemetry" and version >= 3 and not (isinstance(record["points"], list) and record["points"]):
        return "points must be a non-empty list"
    return None
