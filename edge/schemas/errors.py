"""The platform's error codes, in one table: what the platform answers, what the gateway does about it.

Seed 000 7.2.1 asks for documented error codes. This table is the single source: the platform
simulator answers from it (``simulators/platform``), the uplink client interprets answers by it
(``edge/uplink/client.py``), and ``docs/uplink.md`` prints it (``python -m edge.schemas.doc``).

Every error body is ``{"code", "message", "suggestion"}`` (plus ``errors`` listing record ids where
records are at fault). The token endpoint answers in RFC 6749 section 5.2 form as well
(``{"error", "error_description"}``), which a real OAuth2 server sends; ``TOKEN_ERRORS`` maps the
RFC's codes onto this table.

What the gateway does (``Action``):

* ``retry``: keep the batch, back off (honouring ``Retry-After``) and resend it under the same
  ``Idempotency-Key``; counts towards the circuit breaker;
* ``refresh_token``: drop the access token, fetch a new one and resend once;
* ``dead_letter``: the records are wrong: the ones the answer names go to the dead-letter table
  with the platform's message, the rest are resent under a new key; the lane keeps flowing;
* ``hold``: a configuration problem on either side (credentials, estate binding): nothing is
  dropped, the batch is retried with backoff so uploads resume by themselves once it is fixed, and
  the log names the code and the platform's suggestion.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    RETRY = "retry"
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 (an action name, not a credential)
    DEAD_LETTER = "dead_letter"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class PlatformError:
    code: str
    status: int
    meaning: str
    action: Action
    suggestion: str


ERRORS: tuple[PlatformError, ...] = (
    PlatformError("AUTH_MISSING", 401, "no bearer token on an ingest request", Action.REFRESH_TOKEN,
                  "obtain a token from /oauth/token and send it as Authorization: Bearer <token>"),
    PlatformError("TOKEN_EXPIRED", 401, "the access token is unknown or expired", Action.REFRESH_TOKEN,
                  "request a new access token"),
    PlatformError("INVALID_CLIENT", 401, "unknown client id or wrong secret (RFC 6749 invalid_client)", Action.HOLD,
                  "check platform.client_id and the client secret in the secrets file"),
    PlatformError("BAD_AUTH_HEADER", 400, "the Basic authorization header is malformed (RFC 6749 invalid_request)",
                  Action.HOLD, "send base64(client_id:client_secret)"),
    PlatformError("UNSUPPORTED_GRANT", 400, "grant type other than client_credentials "
                  "(RFC 6749 unsupported_grant_type)", Action.HOLD, "send grant_type=client_credentials"),
    PlatformError("ESTATE_MISMATCH", 403, "a record names an estate or gateway this client is not bound to",
                  Action.HOLD, "check estate.id and estate.gateway_id against the platform's registration "
                  "of this client"),
    PlatformError("UNKNOWN_KIND", 404, "no ingest endpoint for this record kind", Action.HOLD,
                  "post to /api/v1/ingest/{telemetry|event|alarm|indicator}"),
    PlatformError("NO_IDEMPOTENCY_KEY", 400, "the Idempotency-Key header is missing", Action.HOLD,
                  "send one key per batch, the same key when the batch is retried"),
    PlatformError("BAD_BODY", 400, "the body is not (gzip) UTF-8 JSON", Action.RETRY,
                  "send application/json in UTF-8, gzip-compressed or plain"),
    PlatformError("BAD_ENVELOPE", 400, "the body is not a batch envelope with a records list", Action.HOLD,
                  "send {gateway_id, estate_id, kind, records: [...]}"),
    PlatformError("KIND_MISMATCH", 400, "the envelope's kind differs from the endpoint", Action.HOLD,
                  "post each kind to its own endpoint"),
    PlatformError("BATCH_TOO_LARGE", 413, "more records in one batch than the platform takes", Action.HOLD,
                  "send at most 1,000 records per batch (platform.batch_size)"),
    PlatformError("EVIDENCE_MISMATCH", 400, "the uploaded picture's SHA-256 differs from its id", Action.RETRY,
                  "resend the picture: it was damaged on the way"),
    PlatformError("EVIDENCE_MISSING", 409, "records reference evidence the platform does not have; errors lists them",
                  Action.RETRY, "upload the evidence (PUT /api/v1/evidence/{id}) before the records that name it"),
    PlatformError("VALIDATION_FAILED", 422, "records fail the upload schema; errors lists them by id",
                  Action.DEAD_LETTER, "fix or drop the listed records and resend the rest"),
    PlatformError("RATE_LIMITED", 429, "too many requests", Action.RETRY, "wait for Retry-After, then resend"),
    PlatformError("INTERNAL", 500, "the platform failed while handling the request", Action.RETRY,
                  "retry with backoff"),
    PlatformError("UNAVAILABLE", 503, "the platform is down for maintenance or overloaded", Action.RETRY,
                  "retry later (Retry-After when given)"),
)
"""Every code the platform may answer. Codes are stable; a new code is appended, never renamed."""

BY_CODE: dict[str, PlatformError] = {e.code: e for e in ERRORS}

# RFC 6749 section 5.2 ``error`` values -> our code (what a real OAuth2 server's token endpoint says).
TOKEN_ERRORS: dict[str, str] = {
    "invalid_client": "INVALID_CLIENT",
    "invalid_request": "BAD_AUTH_HEADER",
    "unsupported_grant_type": "UNSUPPORTED_GRANT",
    "unauthorized_client": "INVALID_CLIENT",
    "invalid_grant": "INVALID_CLIENT",
    "invalid_scope": "INVALID_CLIENT",
}
RFC6749_CODES: dict[str, str] = {
    "INVALID_CLIENT": "invalid_client", "BAD_AUTH_HEADER": "invalid_request", "UNSUPPORTED_GRANT": "unsupported_grant_type",
}


def error_body(code: str, message: str | None = None, **extra: object) -> tuple[int, dict[str, object]]:
    """``(HTTP status, JSON body)`` of ``code`` as the platform answers it; ``message`` overrides the meaning."""
    entry = BY_CODE[code]
    body: dict[str, object] = {"code": entry.code, "message": message or entry.meaning, "suggestion": entry.suggestion}
    if code in RFC6749_CODES:
        body.update(error=RFC6749_CODES[code], error_description=message or entry.meaning)
    body.update(extra)
    return entry.status, body


def action_for(status: int, code: str | None) -> Action:
    """What the gateway does with an answer: by its code when the table knows it, else by its status."""
    entry = BY_CODE.get(code or "")
    if entry is not None:
        return entry.action
    if status == 401:
        return Action.REFRESH_TOKEN
    if status in (400, 409, 413, 422):
        return Action.DEAD_LETTER
    if status == 429 or status == 408 or status >= 500:
        return Action.RETRY
    return Action.HOLD


def markdown_table() -> str:
    """The table as ``docs/uplink.md`` prints it."""
    lines = ["| code | HTTP | meaning | what the gateway does | suggestion |", "|---|---|---|---|---|"]
    for e in ERRORS:
        lines.append(f"| `{e.code}` | {e.status} | {e.meaning} | `{e.action.value}` | {e.suggestion} |")
    return "\n".join(lines)
