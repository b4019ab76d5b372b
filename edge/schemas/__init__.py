"""The upload contract: versioned JSON Schemas (draft 2020-12) for every record kind the uplink sends.

One schema per record kind (``telemetry``, ``event``, ``alarm``, ``indicator``) plus the batch envelope
(``batch``: ``{"gateway_id", "estate_id", "kind", "sent_at", "records": [...]}``), shipped as JSON files
in ``edge/schemas/v1/`` so that the platform side can use them without Python. Both ends use them:
the uplink checks every record before sending (an invalid record is dead-lettered locally instead of
poisoning a batch), and the platform simulator validates what it receives with the same files.

The payloads themselves are built in ``edge/store/codec.py``; ``tests/unit/schemas`` checks that every
payload the codec can produce validates, so the two cannot drift apart silently.

Usage::

    from edge import schemas
    schemas.validate("alarm", payload)          # raises SchemaError naming the field
    schemas.record_errors("telemetry", record)  # [] when fine, else one line per problem
    schemas.schema("indicator")                 # the JSON Schema as a dict (a deep copy)

Failure modes: an unknown kind raises ``KeyError`` naming the known ones; a payload that does not
conform raises ``SchemaError`` (``validate``) or yields messages of the form ``path: problem``
(``record_errors``).

Why ``jsonschema_rs`` and not the pure-Python ``jsonschema``: the uplink validates every record before
it leaves, and its drain target is 20,000 records/s. Pure-Python validation of one telemetry record
costs about 150 us here (a ceiling of ~6,700 records/s); the Rust validator costs about 1 us, formats
(``date-time``) included. ``tests/unit/schemas`` cross-checks the files against the draft 2020-12
meta-schema with the reference ``jsonschema`` package.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs

from edge.errors import EdgeError

SCHEMA_VERSION = 2
"""Version of the upload contract; part of every schema's ``$id`` (``urn:estate-edge:schema:v2:<kind>``).

``v1/`` stays in the package unchanged (a released version is never edited); the gateway sends v2.
"""

RECORD_KINDS: tuple[str, ...] = ("telemetry", "event", "alarm", "indicator", "device")
KINDS: tuple[str, ...] = (*RECORD_KINDS, "batch")

_PACKAGE = f"edge.schemas.v{SCHEMA_VERSION}"
_MAX_ERRORS = 10  # per record: enough to fix it, short enough for a dead-letter message


class SchemaError(EdgeError):
    """A payload does not conform to the upload contract. ``errors`` lists ``path: problem`` lines."""

    def __init__(self, kind: str, errors: list[str]) -> None:
        super().__init__(f"invalid {kind} payload: " + "; ".join(errors))
        self.kind = kind
        self.errors = errors


def schema_id(kind: str) -> str:
    return f"urn:estate-edge:schema:v{SCHEMA_VERSION}:{kind}"


@cache
def _raw(name: str) -> dict[str, Any]:
    text = resources.files(_PACKAGE).joinpath(f"{name}.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def _registry() -> jsonschema_rs.Registry:
    # Every $ref is to one of our own URNs: nothing is ever fetched over the network.
    return jsonschema_rs.Registry([(schema_id(name), _raw(name)) for name in ("common", *KINDS)])


@cache
def _validator(kind: str) -> Any:
    if kind not in KINDS:
        raise KeyError(f"unknown record kind {kind!r}; known: {', '.join(KINDS)}")
    return jsonschema_rs.validator_for(_raw(kind), registry=_registry(), validate_formats=True)


def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of ``kind`` (one of ``KINDS``), as a fresh dict the caller may modify."""
    _validator(kind)  # raises KeyError for an unknown kind
    return copy.deepcopy(_raw(kind))


def common_schema() -> dict[str, Any]:
    """The shared ``$defs`` every kind refers to (ULID, UTC timestamp, identifier, ...)."""
    return copy.deepcopy(_raw("common"))


def _path(parts: Any) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def record_errors(kind: str, payload: Any) -> list[str]:
    """Why ``payload`` is not a valid ``kind``: one ``path: message`` line per problem, ``[]`` when valid.

    Cheap when valid (one pass); the error walk only runs for an invalid payload.
    """
    validator = _validator(kind)
    if validator.is_valid(payload):
        return []
    out: list[str] = []
    for error in validator.iter_errors(payload):
        message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
        line = f"{_path(error.instance_path)}: {message}"
        if line not in out:
            out.append(line)
        if len(out) >= _MAX_ERRORS:
            break
    return out


def validate(kind: str, payload: Any) -> None:
    """Raise ``SchemaError`` unless ``payload`` is a valid ``kind`` record (or batch envelope)."""
    errors = record_errors(kind, payload)
    if errors:
        raise SchemaError(kind, errors)


def validate_batch(envelope: Any) -> None:
    """Validate a whole upload body: the envelope and every record against its kind's schema."""
    validate("batch", envelope)


__all__ = [
    "KINDS",
    "RECORD_KINDS",
    "SCHEMA_VERSION",
    "SchemaError",
    "common_schema",
    "record_errors",
    "schema",
    "schema_id",
    "validate",
    "validate_batch",
]
