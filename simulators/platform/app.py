"""The central rating platform, simulated: OAuth2 token endpoint, ingest endpoints, inspection.

Contract (seed 000, 7.2): HTTPS, OAuth2 client credentials, JSON in UTF-8 (gzip accepted),
batches of at most 1,000 records, errors as ``{code, message, suggestion}`` from the contract's
error table (``edge.schemas.errors``; the token endpoint adds RFC 6749 ``error`` /
``error_description``), idempotent ingest: a batch carries an ``Idempotency-Key`` header and every
record its own id, and neither a replayed batch nor a re-sent record is ever counted twice. What
was accepted is kept in SQLite.

Contract versions: a batch names its ``contract_version`` (3: a telemetry record is one poll of one
device with its ``points``); a batch without one is version 2 (one reading per telemetry record), so
an older gateway is still understood. Records are judged by their version's schemas and kept as
sent; the platform counts telemetry *readings* (points) beside records (``/_sim/stats``), and
``/_sim/readings`` lists them one per reading whatever the version they came in.

Each OAuth client is bound to one estate and gateway (seed 000 5.4, ids globally unique): a batch
whose envelope or records name another is refused whole with 403 ``ESTATE_MISMATCH`` and nothing of
it is stored. A client registered without a binding is bound by its first accepted batch (a
simulator convenience for tests; the binding is kept in the database across restarts).

    POST /oauth/token                   grant_type=client_credentials (form or HTTP Basic)
    POST /api/v1/ingest/{kind}          kind: telemetry | event | alarm | indicator
    PUT  /api/v1/evidence/{id}          one evidence JPEG, id = "sha256-<hex of its SHA-256>"
    GET  /_sim                          human inspection view
    GET  /_sim/stats, /_sim/records     inspection for tests (records as sent)
    GET  /_sim/readings                 telemetry, one entry per reading (v2 and v3 alike)
    PUT  /_sim/faults, POST /_sim/reset fault switches
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gzip
import hashlib
import json
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from edge.schemas import envelope_version
from edge.schemas.errors import error_body
from simulators.platform.faults import Faults
from simulators.platform.page import SIM_PAGE_KINDS, SIM_PAGE_LATEST, render_sim_page
from simulators.platform.validation import KINDS, SCHEMA_VERSION, record_error

MAX_BATCH = 1000
MIN_VERSION = 2  # the oldest contract version still read (v1 records name no estate and are refused)


def error(code: str, message: str | None = None, **extra: Any) -> JSONResponse:
    """The answer for ``code`` as the contract's error table has it (status, meaning, suggestion)."""
    headers = extra.pop("headers", None)
    status, body = error_body(code, message, **extra)
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass(frozen=True, slots=True)
class ClientBinding:
    """An OAuth client the platform knows: its secret and the estate / gateway it may report for."""

    secret: str
    estate_id: str | None = None
    gateway_id: str | None = None


@dataclass
class PlatformState:
    db_path: Path
    client_id: str
    client_secret: str
    token_ttl_s: float = 3600.0
    faults: Faults = field(default_factory=Faults)
    tokens: dict[str, float] = field(default_factory=dict)
    estate_id: str | None = None  # binding of client_id; None: bound by its first accepted batch
    gateway_id: str | None = None
    clients: dict[str, ClientBinding] = field(default_factory=dict)  # further clients
    token_clients: dict[str, str] = field(default_factory=dict)  # access token -> client id
    _learnt: set[str] = field(default_factory=set)  # clients bound by their first batch
    counters: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    db: sqlite3.Connection | None = None
    last_seq: int = 0  # acceptance order; kept in memory (a max() per batch would scan the table)

    def open(self) -> None:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS records (
                id TEXT PRIMARY KEY, kind TEXT NOT NULL, seq INTEGER NOT NULL,
                payload TEXT NOT NULL, received_us INTEGER NOT NULL,
                readings INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS records_kind ON records(kind, seq);
            CREATE TABLE IF NOT EXISTS batches (
                idempotency_key TEXT PRIMARY KEY, kind TEXT NOT NULL, response TEXT NOT NULL,
                received_us INTEGER NOT NULL) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS records_seq ON records(seq);
            CREATE TABLE IF NOT EXISTS evidence (
                id TEXT PRIMARY KEY, jpeg BLOB NOT NULL, received_us INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS bindings (
                client_id TEXT PRIMARY KEY, estate_id TEXT NOT NULL, gateway_id TEXT NOT NULL) WITHOUT ROWID;
            """
        )
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(records)")}
        if "readings" not in columns:  # a database from before reading counts: v2 telemetry is one each
            self.db.execute("ALTER TABLE records ADD COLUMN readings INTEGER NOT NULL DEFAULT 0")
            self.db.execute("UPDATE records SET readings = 1 WHERE kind = 'telemetry'")
        self.clients.setdefault(self.client_id, ClientBinding(self.client_secret, self.estate_id, self.gateway_id))
        for client_id, estate_id, gateway_id in self.db.execute("SELECT client_id, estate_id, gateway_id FROM bindings"):
            known = self.clients.get(client_id)
            if known is not None and known.estate_id is None:
                self.clients[client_id] = ClientBinding(known.secret, estate_id, gateway_id)
                self._learnt.add(client_id)
        self.last_seq = int(self.db.execute("SELECT coalesce(max(seq), 0) FROM records").fetchone()[0])

    def bump(self, name: str, amount: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + amount

    def unbind_learnt(self) -> None:
        """Forget bindings learnt from a first batch; configured ones stay."""
        self.clients[self.client_id] = ClientBinding(self.client_secret, self.estate_id, self.gateway_id)
        for client_id, known in list(self.clients.items()):
            if client_id != self.client_id and known.estate_id is not None and client_id in self._learnt:
                self.clients[client_id] = ClientBinding(known.secret)
        self._learnt.clear()

    def binding_error(self, client_id: str, body: dict[str, Any], records: list[Any]) -> JSONResponse | None:
        """403 ``ESTATE_MISMATCH`` unless the envelope and every record name the client's estate and gateway.

        Binds an unbound client to the batch's estate and gateway (called under ``lock``).
        """
        assert self.db is not None
        binding = self.clients[client_id]
        if binding.estate_id is None:
            estate, gateway = body.get("estate_id"), body.get("gateway_id")
            if not isinstance(estate, str) or not isinstance(gateway, str):
                return None  # the schema check names the missing fields
            binding = self.clients[client_id] = ClientBinding(binding.secret, estate, gateway)
            self._learnt.add(client_id)
            self.db.execute("INSERT OR REPLACE INTO bindings VALUES (?,?,?)", (client_id, estate, gateway))
        want = (binding.estate_id, binding.gateway_id)
        bad = [{"id": r.get("id"), "message": f"record of estate {r.get('estate_id')!r} / gateway "
                f"{r.get('gateway_id')!r}; client {client_id!r} reports for {want[0]!r} / {want[1]!r}"}
               for r in records if isinstance(r, dict) and (r.get("estate_id"), r.get("gateway_id")) != want]
        envelope = (body.get("estate_id"), body.get("gateway_id"))
        if not bad and envelope == want:
            return None
        self.bump("estate_mismatch")
        return error("ESTATE_MISMATCH", f"client {client_id!r} is bound to estate {want[0]!r} / gateway {want[1]!r}; "
                     f"the batch names {envelope[0]!r} / {envelope[1]!r} and {len(bad)} record(s) another",
                     errors=bad[:100])

    def take_seqs(self, count: int) -> int:
        """Reserve ``count`` acceptance numbers; returns the first."""
        first = self.last_seq + 1
        self.last_seq += count
        return first


def _token_client(state: PlatformState, request: Request) -> str | JSONResponse:
    """The client id the bearer token was issued to, or the 401 answer."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        state.bump("unauthorized")
        return error("AUTH_MISSING")
    token = header[7:].strip()
    expiry = state.tokens.get(token)
    if expiry is None or expiry <= time.monotonic():
        state.bump("unauthorized")
        return error("TOKEN_EXPIRED")
    return state.token_clients.get(token, state.client_id)


def _decode_body(raw: bytes, encoding: str) -> Any:
    if encoding == "gzip":
        raw = gzip.decompress(raw)
    return orjson.loads(raw)  # UTF-8 only, as the contract says; invalid JSON raises a ValueError


def create_app(state: PlatformState) -> FastAPI:  # noqa: C901 - the routes are closures over state; mccabe counts them here
    app = FastAPI(title="estate-edge platform simulator", docs_url=None, redoc_url=None)
    app.state.platform = state

    @app.middleware("http")
    async def outage_and_date(request: Request, call_next: Any) -> Response:
        if state.faults.outage and not request.url.path.startswith("/_sim"):
            state.bump("outage_refusals")
            response: Response = error("UNAVAILABLE", "platform is down for maintenance")
        else:
            response = await call_next(request)
        response.headers["Date"] = formatdate(usegmt=True)
        return response

    @app.post("/oauth/token")
    async def token(request: Request) -> Response:
        form = await request.form()
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return error("BAD_AUTH_HEADER", "malformed Basic header")
        if form.get("grant_type") != "client_credentials":
            return error("UNSUPPORTED_GRANT", "only client_credentials is supported")
        known = state.clients.get(str(client_id))
        if known is None or not secrets.compare_digest(str(client_secret or ""), known.secret):
            state.bump("bad_credentials")
            return error("INVALID_CLIENT", "unknown client or wrong secret")
        access = secrets.token_urlsafe(24)
        state.tokens[access] = time.monotonic() + state.token_ttl_s
        state.token_clients[access] = str(client_id)
        state.bump("tokens_issued")
        return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": int(state.token_ttl_s)})

    @app.post("/api/v1/ingest/{kind}")
    async def ingest(kind: str, request: Request) -> Response:
        if kind not in KINDS:
            return error("UNKNOWN_KIND", f"no ingest endpoint for {kind!r}")
        if state.faults.expire_tokens:
            state.tokens.clear()
            state.faults.expire_tokens = False
        client = _token_client(state, request)
        if isinstance(client, JSONResponse):
            return client
        if state.faults.slow_ms:
            await asyncio.sleep(state.faults.slow_ms / 1000)
        if state.faults.fail_500 > 0:
            state.faults.fail_500 -= 1
            state.bump("injected_500")
            return error("INTERNAL", "injected failure")
        if state.faults.rate_limit > 0:
            state.faults.rate_limit -= 1
            state.bump("injected_429")
            return error("RATE_LIMITED", headers={"Retry-After": f"{state.faults.retry_after_s:g}"})
        if state.faults.ack_html > 0:
            state.faults.ack_html -= 1
            state.bump("injected_ack_html")
            return HTMLResponse("<!doctype html><html><body><h1>Wi-Fi login</h1></body></html>")
        key = request.headers.get("idempotency-key")
        if not key:
            return error("NO_IDEMPOTENCY_KEY")
        raw = await request.body()
        try:
            body = _decode_body(raw, request.headers.get("content-encoding", ""))
        except (OSError, ValueError, UnicodeDecodeError):
            return error("BAD_BODY")
        response = await asyncio.to_thread(_ingest_sync, state, kind, key, body, client)
        return _bad_ack(state, response) if response.status_code == 200 else response

    @app.put("/api/v1/evidence/{evidence_id}")
    async def evidence(evidence_id: str, request: Request) -> Response:
        """Store one evidence picture under its content hash; the same picture again is a no-op."""
        client = _token_client(state, request)
        if isinstance(client, JSONResponse):
            return client
        jpeg = await request.body()
        if evidence_id != "sha256-" + hashlib.sha256(jpeg).hexdigest():
            state.bump("evidence_mismatch")
            return error("EVIDENCE_MISMATCH", f"the body's SHA-256 is not {evidence_id}")
        assert state.db is not None
        with state.lock:
            before = state.db.total_changes
            state.db.execute("INSERT OR IGNORE INTO evidence VALUES (?,?,?)", (evidence_id, jpeg, time.time_ns() // 1000))
            stored = state.db.total_changes > before
        state.bump("evidence_uploads" if stored else "evidence_duplicates")
        if stored:
            state.bump("evidence_bytes", len(jpeg))
        return JSONResponse({"id": evidence_id, "stored": stored}, status_code=201 if stored else 200)

    @app.get("/_sim/evidence/{evidence_id}")
    async def evidence_file(evidence_id: str) -> Response:
        """The picture a record references (inspection: the records list shows only the reference)."""
        assert state.db is not None
        with state.lock:
            row = state.db.execute("SELECT jpeg FROM evidence WHERE id=?", (evidence_id,)).fetchone()
        if row is None:
            return JSONResponse({"code": "NOT_FOUND", "message": f"no evidence {evidence_id}"}, status_code=404)
        return Response(bytes(row[0]), media_type="image/jpeg")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Readiness: answering here means TLS files are written and the ingest database is open."""
        return {"status": "ok"}

    @app.get("/_sim/stats")
    async def stats() -> dict[str, Any]:
        assert state.db is not None
        with state.lock:
            rows = state.db.execute("SELECT kind, count(*), sum(readings) FROM records GROUP BY kind").fetchall()
        per_kind = {kind: count for kind, count, _ in rows}
        readings = {kind: total for kind, _, total in rows if kind == "telemetry"}
        return {"records": per_kind, "readings": readings, "counters": state.counters,
                "faults": state.faults.model_dump()}

    @app.get("/_sim/records")
    async def records(kind: str | None = None, after_seq: int = 0, limit: int = 1000) -> dict[str, Any]:
        assert state.db is not None
        limit = max(1, min(limit, 100_000))
        sql = "SELECT seq, kind, payload FROM records WHERE seq > ?"
        params: list[Any] = [after_seq]
        if kind:
            sql += " AND kind = ?"
            params.append(kind)
        sql += " ORDER BY seq LIMIT ?"
        params.append(limit)
        with state.lock:
            rows = state.db.execute(sql, params).fetchall()
        return {"records": [{"seq": s, "kind": k, **json.loads(p)} for s, k, p in rows]}

    @app.get("/_sim/readings")
    async def readings(after_seq: int = 0, limit: int = 1000, device_id: str | None = None) -> dict[str, Any]:
        """Telemetry one reading per entry, oldest first: ``seq`` and ``id`` of the record it came in, then
        ``device_id``, ``point``, ``value``, ``unit``, ``quality``, ``ts``. ``limit`` counts records."""
        assert state.db is not None
        limit = max(1, min(limit, 100_000))
        sql = "SELECT seq, payload FROM records WHERE kind = 'telemetry' AND seq > ?"
        params: list[Any] = [after_seq]
        sql += " ORDER BY seq LIMIT ?"
        params.append(limit)
        with state.lock:
            rows = state.db.execute(sql, params).fetchall()
        out = []
        for seq, raw in rows:
            record = json.loads(raw)
            if device_id is not None and record.get("device_id") != device_id:
                continue
            out.extend({"seq": seq, **reading} for reading in flatten_telemetry(record))
        return {"readings": out, "last_seq": rows[-1][0] if rows else after_seq}

    @app.put("/_sim/faults")
    async def set_faults(faults: Faults) -> dict[str, Any]:
        state.faults = faults
        return faults.model_dump()

    @app.post("/_sim/reset")
    async def reset() -> dict[str, str]:
        assert state.db is not None
        with state.lock:
            state.db.execute("DELETE FROM records")
            state.db.execute("DELETE FROM batches")
            state.db.execute("DELETE FROM evidence")
            state.db.execute("DELETE FROM bindings")  # clients bound by their first batch are free again
            state.last_seq = 0
            state.unbind_learnt()
        state.counters.clear()
        state.faults = Faults()
        return {"status": "reset"}

    @app.get("/_sim/records/{record_id}/evidence")
    async def record_evidence(record_id: str) -> Response:
        """The picture of one record, whether it came inline (base64) or uploaded apart (``evidence.id``)."""
        assert state.db is not None
        with state.lock:
            row = state.db.execute("SELECT payload FROM records WHERE id=?", (record_id,)).fetchone()
        evidence = json.loads(row[0]).get("evidence") if row else None
        if isinstance(evidence, dict) and isinstance(evidence.get("base64"), str):
            try:
                return Response(base64.b64decode(evidence["base64"]), media_type=evidence.get("content_type", "image/jpeg"))
            except (binascii.Error, ValueError):
                return error("BAD_EVIDENCE", f"record {record_id}'s evidence is not base64")
        if isinstance(evidence, dict) and isinstance(evidence.get("id"), str):
            return await evidence_file(evidence["id"])
        return JSONResponse({"code": "NOT_FOUND", "message": f"record {record_id} has no evidence"}, status_code=404)

    @app.get("/_sim", response_class=HTMLResponse)
    async def inspect() -> str:
        """What the platform received, for a person: counts, and the latest records of each kind with pictures."""
        data = await stats()
        assert state.db is not None
        with state.lock:
            latest = {kind: state.db.execute("SELECT id, seq, received_us, payload FROM records WHERE kind=? "
                                             "ORDER BY seq DESC LIMIT ?", (kind, SIM_PAGE_LATEST)).fetchall()
                      for kind in SIM_PAGE_KINDS}
        return render_sim_page(data, latest)

    return app


def _bad_ack(state: PlatformState, response: Response) -> Response:
    """The batch is stored; an ``ack_truncated`` / ``ack_wrong_count`` fault spoils only the answer."""
    if state.faults.ack_truncated > 0:
        state.faults.ack_truncated -= 1
        state.bump("injected_ack_truncated")
        return Response(bytes(response.body)[:7], media_type="application/json")
    if state.faults.ack_wrong_count > 0:
        state.faults.ack_wrong_count -= 1
        state.bump("injected_ack_wrong_count")
        answer = json.loads(bytes(response.body))
        answer["accepted"] = max(0, answer["accepted"] + answer["duplicates"] - 1)
        answer["duplicates"] = 0
        return JSONResponse(answer)
    return response


def _ingest_sync(state: PlatformState, kind: str, key: str, body: Any, client_id: str | None = None) -> Response:
    """Validate and store one batch atomically; replay the stored answer for a repeated key."""
    assert state.db is not None
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        return error("BAD_ENVELOPE")
    records = body["records"]
    if len(records) > MAX_BATCH:
        return error("BATCH_TOO_LARGE", f"{len(records)} records in one batch (at most {MAX_BATCH})")
    if body.get("kind") not in (None, kind):
        return error("KIND_MISMATCH")
    version = envelope_version(body)
    if not version or version < MIN_VERSION:
        return error("BAD_ENVELOPE", f"contract_version {body.get('contract_version')!r} is not one this platform "
                     f"reads ({MIN_VERSION} to {SCHEMA_VERSION})")
    with state.lock:
        stored = state.db.execute("SELECT response FROM batches WHERE idempotency_key=?", (key,)).fetchone()
        if stored is not None:
            state.bump("replayed_batches")
            return JSONResponse(json.loads(stored[0]), headers={"Idempotent-Replayed": "true"})
        refused = state.binding_error(client_id or state.client_id, body, records)
        if refused is not None:
            return refused
        missing = _missing_evidence(state, records)
        if missing:
            state.bump("evidence_missing")
            return error("EVIDENCE_MISSING", f"{len(missing)} record(s) reference evidence not uploaded",
                         errors=missing[:100])
        rejected = []
        for record in records:
            reason = record_error(kind, record, version)
            if reason is None and kind == "telemetry" and record.get("device_id") in state.faults.reject_device_ids:
                reason = f"device {record.get('device_id')} is not registered on the platform"
            if reason is not None:
                rejected.append({"id": record.get("id") if isinstance(record, dict) else None, "message": reason})
        if rejected:
            state.bump("rejected_batches")
            state.bump("rejected_records", len(rejected))
            return error("VALIDATION_FAILED", f"{len(rejected)} record(s) failed validation", errors=rejected)
        now_us = time.time_ns() // 1000
        seq = state.take_seqs(len(records))
        rows = [(r["id"], kind, seq + i, orjson.dumps(r).decode(), now_us, reading_count(kind, r))
                for i, r in enumerate(records)]
        before = state.db.total_changes
        state.db.execute("BEGIN")
        state.db.executemany("INSERT OR IGNORE INTO records VALUES (?,?,?,?,?,?)", rows)
        accepted = state.db.total_changes - before
        response = {"accepted": accepted, "duplicates": len(records) - accepted}
        state.db.execute("INSERT INTO batches VALUES (?,?,?,?)", (key, kind, json.dumps(response), now_us))
        state.db.execute("COMMIT")
        state.bump("batches")
        state.bump("records_accepted", accepted)
        state.bump("records_duplicate", len(records) - accepted)
    return JSONResponse(response)


def reading_count(kind: str, record: dict[str, Any]) -> int:
    """Readings a record carries: its points (v3 telemetry), one (v2 telemetry), none (other kinds)."""
    if kind != "telemetry":
        return 0
    points = record.get("points")
    return len(points) if isinstance(points, list) else 1


def flatten_telemetry(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A telemetry record as one entry per reading, whichever contract version it came in."""
    head = {"id": record.get("id"), "device_id": record.get("device_id"), "ts": record.get("ts")}
    points = record.get("points")
    if not isinstance(points, list):
        return [{**head, **{k: record.get(k) for k in ("point", "value", "unit", "quality")}}]
    return [{**head, **{k: p.get(k) for k in ("point", "value", "unit", "quality")}} for p in points]


def _missing_evidence(state: PlatformState, records: list[Any]) -> list[dict[str, Any]]:
    """The records whose ``evidence.id`` the platform does not hold (called under ``lock``)."""
    assert state.db is not None
    refs = {r.get("id"): r["evidence"].get("id") for r in records
            if isinstance(r, dict) and isinstance(r.get("evidence"), dict) and "id" in r["evidence"]}
    if not refs:
        return []
    wanted = sorted({str(v) for v in refs.values()})
    marks = ",".join("?" * len(wanted))
    have = {row[0] for row in state.db.execute(f"SELECT id FROM evidence WHERE id IN ({marks})", wanted)}
    return [{"id": rid, "message": f"evidence {eid} was not uploaded"} for rid, eid in refs.items() if eid not in have]


class DropAfterBody:
    """ASGI wrapper for the 'drop the connection after the body was read' fault.

    The inner app runs to completion (so the batch *is* stored), then the connection is aborted
    without a response: the gateway cannot know it succeeded, must retry, and the simulator's
    idempotency must keep the count exact.
    """

    def __init__(self, app: FastAPI, state: PlatformState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (scope["type"] != "http" or self.state.faults.drop_after_body <= 0
                or not scope["path"].startswith("/api/v1/ingest/")):
            await self.app(scope, receive, send)
            return
        self.state.faults.drop_after_body -= 1
        self.state.bump("dropped_connections")

        async def swallow(message: dict[str, Any]) -> None:
            return None

        await self.app(scope, receive, swallow)
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None:
            transport.abort()
        else:  # an ASGI server we cannot reach into: fail the request instead
            raise ConnectionAbortedError("dropping connection after the body was read")
