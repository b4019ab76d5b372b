"""The upload contract: versioned JSON Schemas (draft 2020-12) for every record kind the uplink sends.

One schema per record kind (``telemetry``, ``event``, ``alarm``, ``indicator``, ``device``) plus the batch
envelope (``batch``: ``{"contract_version", "gateway_id", "estate_id", "kind", "sent_at", "records": [...]}``),
shipped as JSON files in ``edge/schemas/v<N>/`` so that the platform side can use them without Python.
The gateway sends version ``SCHEMA_VERSION``; the released versions stay in the package unchanged, and
the platform simulator validates each batch against the version its envelope names (``v2`` when it
names none), so an older gateway keeps being understood.

The payloads are built in ``edge/store/codec.py`` and are valid by construction: the uplink checks
telemetry (the hot path: thousands of readings a second) against the schema only behind the
``platform.validate_telemetry`` debug switch, and the rarer kinds (events, alarm steps, indicators,
device records, whose ``data`` comes from many producers) always, dead-lettering an invalid record
locally instead of poisoning a batch. ``tests/unit/schemas`` checks that every payload the codec can
produce validates, so the two cannot drift apart silently.

Usage::

    from edge import schemas
    schemas.validate("alarm", payload)          # raises SchemaError naming the field
    schemas.record_errors("telemetry", record)  # [] when fine, else one line per problem
    schemas.schema("indicator")                 # the JSON Schema as a dict (a deep copy)
    schemas.record_errors("telemetry", record, version=2)  # an older gateway's record

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

SCHEMA_VERSION = 3
"""Version of the upload contract the gateway sends; part of every schema's ``$id``
(``urn:estate-edge:schema:v3:<kind>``) and named by every batch envelope (``contract_version``).

``v1/`` and ``v2/`` stay in the package unchanged (a released version is never edited).
"""

VERSIONS: tuple[int, ...] = (1, 2, 3)
"""Every released version, oldest first (the platform simulator accepts 2 and 3)."""

RECORD_KINDS: tuple[str, ...] = ("telemetry", "event", "alarm", "indicator", "device")
KINDS: tuple[str, ...] = (*RECORD_KINDS, "batch")

_MAX_ERRORS = 10  # per record: enough to fix it, short enough for a dead-letter message


class SchemaError(EdgeError):
    """A payload does not conform to the upload contract. ``errors`` lists ``path: problem`` lines."""

    def __init__(self, kind: str, errors: list[str]) -> None:
        super().__init__(f"invalid {kind} payload: " + "; ".join(errors))
        self.kind = kind
        self.errors = errors


def schema_id(kind: str, version: int = SCHEMA_VERSION) -> str:
    return f"urn:estate-edge:schema:v{version}:{kind}"


def _names(version: int) -> list[str]:
    """The schema files of one version (v1 has no device kind)."""
    if version not in VERSIONS:
        raise KeyError(f"unknown contract version {version!r}; known: {', '.join(map(str, VERSIONS))}")
    folder = resources.files(f"edge.schemas.v{version}")
    return sorted(entry.name.removesuffix(".json") for entry in folder.iterdir() if entry.name.endswith(".json"))


@cache
def _raw(name: str, version: int = SCHEMA_VERSION) -> dict[str, Any]:
    text = resources.files(f"edge.schemas.v{version}").joinpath(f"{name}.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def _registry(version: int) -> jsonschema_rs.Registry:
    # Every $ref is to one of our own URNs: nothing is ever fetched over the network.
    return jsonschema_rs.Registry([(schema_id(name, version), _raw(name, version)) for name in _names(version)])


@cache
def _validator(kind: str, version: int = SCHEMA_VERSION) -> Any:
    known = [name for name in _names(version) if name != "common"]
    if kind not in known:
        raise KeyError(f"unknown record kind {kind!r} in contract v{version}; known: {', '.join(known)}")
    return jsonschema_rs.validator_for(_raw(kind, version), registry=_registry(version), validate_formats=True)


def schema(kind: str, version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON Schema of ``kind`` (one of ``KINDS``), as a fresh dict the caller may modify."""
    _validator(kind, version)  # raises KeyError for an unknown kind
    return copy.deepcopy(_raw(kind, version))


def common_schema(version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """The shared ``$defs`` every kind refers to (ULID, UTC timestamp, identifier, ...)."""
    return copy.deepcopy(_raw("common", version))


def _path(parts: Any) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def record_errors(kind: str, payload: Any, version: int = SCHEMA_VERSION) -> list[str]:
    """Why ``payload`` is not a valid ``kind`` of contract ``version``: one ``path: message`` line per problem, ``[]`` when valid.

    Cheap when valid (one pass); the error walk only runs for an invalid payload.
    """
    validator = _validator(kind, version)
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


def validate(kind: str, payload: Any, version: int = SCHEMA_VERSION) -> None:
    """Raise ``SchemaError`` unless ``payload`` is a valid ``kind`` record (or batch envelope)."""
    errors = record_errors(kind, payload, version)
    if errors:
        raise SchemaError(kind, errors)


def validate_batch(envelope: Any, version: int = SCHEMA_VERSION) -> None:
    """Validate a whole upload body: the envelope and every record against its kind's schema."""
    validate("batch", envelope, version)


def envelope_version(envelope: Any) -> int:
    """The contract version a batch follows.

    Its ``contract_version``, 2 for an envelope that names none (v2 had no such field), or 0 when the
    field is there but not a released version.
    """
    if not isinstance(envelope, dict) or "contract_version" not in envelope:
        return 2
    version = envelope["contract_version"]
    return version if type(version) is int and version in VERSIONS else 0


__all__ = [
    "KINDS",
    "RECORD_KINDS",
    "SCHEMA_VERSION",
    "VERSIONS",
    "SchemaError",
    "common_schema",
    "envelope_version",
    "record_errors",
    "schema",
    "schema_id",
    "validate",
    "validate_batch",
]
