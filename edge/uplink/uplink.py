"""Store-and-forward upload: drains the store's lanes to the platform, alarms first.

Policy, written down because it is the product:
- Lanes are served in strict priority (alarm, device, event, indicator, telemetry): whenever a worker is
  free it takes the oldest batch of the highest-priority lane that has one, and no lower lane is
  leased while a higher lane has a batch on the wire. A telemetry backlog therefore delays an alarm
  by at most the requests already in flight, and after an outage alarms arrive before telemetry.
- Within a lane, batches are leased oldest first; failed batches go again before newer ones.
- A record is only acknowledged (durable cursor) once the platform answered 2xx for its batch;
  a crash resends at most the in-flight window, which the platform deduplicates by record id and
  ``Idempotency-Key``.
- Records the platform rejects as invalid go to the dead-letter table with its message; the rest
  of their batch is resent under a new key, and the lane keeps flowing.
- Network errors, 5xx and 429 feed the circuit breaker and an exponential, jittered backoff;
  ``Retry-After`` is honoured as the minimum wait.
- Nothing is held in memory beyond ``concurrency`` batches: the queue *is* the store.
- Telemetry goes up as one record per device poll (contract v3), stored as one row per poll with
  its points in upload form: the request splices them in as stored (``codec.telemetry_payload``).
- Telemetry lingers: after a telemetry batch that was not full, the next one is leased no sooner
  than ``TELEMETRY_LINGER_S`` later (full batches go at once, other lanes never wait), so a steady
  stream goes up in a few large requests a second rather than one small request per store commit.
- Cost, per acknowledged batch: one store read to lease it (lanes found empty are looked at again
  after ``LANE_RECHECK_S``, not before every lease), no schema check of telemetry (valid by
  construction; ``validate_telemetry`` turns it on for debugging), one orjson encoding (telemetry
  points are not parsed: report by exception and the schema check parse them when on), and at
  most one cursor write, often shared: completions that arrive while a cursor write is on its way
  are stored together by the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from edge.backoff import Backoff
from edge.clock import Clock, SystemClock
from edge.errors import ConfigError, StoreError, UplinkError, UplinkRejected, UplinkUnavailable
from edge.records import LANE_PRIORITY, Lane
from edge.store import Store
from edge.store.codec import plain
from edge.tasks import wait_event
from edge.uplink.auth import TokenManager
from edge.uplink.breaker import CircuitBreaker
from edge.uplink.client import Ack, PlatformClient
from edge.uplink.exception import ReportByException
from edge.uplink.lanes import Batch, LaneState

if TYPE_CHECKING:
    from edge.config import EstateConfig
    from edge.uplink.mqtt_transport import MqttPlatformClient

log = logging.getLogger(__name__)

LocalValidator = Callable[[str, dict[str, Any]], list[str]]
EVIDENCE_MEMORY = 10_000  # evidence ids remembered as uploaded (a few days of detections)
LANE_RECHECK_S = 0.1  # a lane found empty is read again after this long (an alarm waits at most this)
TELEMETRY_LINGER_S = 0.25  # after a telemetry batch that was not full, the next waits this long (latency bound)


class UplinkClient(Protocol):
    """What the uplink needs of a transport: HTTPS (``PlatformClient``) or MQTT (``MqttPlatformClient``)."""

    error_codes: dict[str, int]

    @property
    def estate_id(self) -> str: ...

    @property
    def gateway_id(self) -> str: ...

    async def send(self, kind: str, records: Sequence[dict[str, Any]]) -> Ack: ...

    async def upload_evidence(self, evidence_id: str, jpeg: bytes) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class UplinkSettings:
    batch_size: int = 1000
    concurrency: int = 4
    idle_poll_s: float = 0.5
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    breaker_failures: int = 5
    breaker_reset_s: float = 30.0


class Uplink:
    """Async context manager: ``__aenter__`` starts the workers, ``__aexit__`` stops them."""

    def __init__(
        self,
        store: Store,
        client: UplinkClient,
        settings: UplinkSettings | None = None,
        *,
        clock: Clock | None = None,
        validator: LocalValidator | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.store = store
        self._http = http  # owned: closed in stop()
        self.client = client
        self.settings = settings or UplinkSettings()
        self.clock = clock or SystemClock()
        self.validator = validator
        self.validate_telemetry = False  # debug switch (platform.validate_telemetry): telemetry is valid by construction
        self.breaker = CircuitBreaker(self.settings.breaker_failures, self.settings.breaker_reset_s, self.clock)
        self.backoff = Backoff(self.settings.backoff_initial_s, self.settings.backoff_max_s, jitter="full")
        self.lanes = {lane: LaneState(lane) for lane in LANE_PRIORITY}
        self._lease_lock = asyncio.Lock()
        self._evidence_sent: OrderedDict[str, None] = OrderedDict()  # pictures the platform has (bounded)
        self.report_by_exception: ReportByException | None = None  # telemetry only; set by from_config
        self._wake = asyncio.Event()
        self._not_before = 0.0  # monotonic time before which no request goes out (backoff / Retry-After)
        self._workers: list[asyncio.Task[None]] = []
        self.batches_sent = 0
        self.failures = 0
        self.rejections = 0
        self.last_error: str | None = None

    @classmethod
    def from_config(cls, store: Store, config: EstateConfig, *, clock: Clock | None = None,
                    transport: httpx.AsyncBaseTransport | None = None,
                    validator: LocalValidator | None = None,
                    on_date_header: Callable[[str], object] | None = None) -> Uplink:
        """Build the client from ``EstateConfig``: HTTPS (default) or MQTT (``platform.transport``).

        TLS verification stays on unless the config says otherwise (lab mode only).
        """
        platform = config.platform
        settings = UplinkSettings(
            batch_size=platform.batch_size, concurrency=platform.concurrency,
            backoff_initial_s=platform.backoff_initial_s, backoff_max_s=platform.backoff_max_s,
            breaker_failures=platform.breaker_failures, breaker_reset_s=platform.breaker_reset_s,
        )
        if validator is None:
            from edge.schemas import record_errors  # our published contract: check before sending

            validator = record_errors
        rbe = platform.report_by_exception
        exceptions = (ReportByException(dict(rbe.deadband), rbe.default_deadband, rbe.max_interval_s)
                      if rbe.enabled else None)
        if platform.transport == "mqtt":
            uplink = cls(store, _mqtt_client(config), settings, clock=clock, validator=validator)
            uplink.report_by_exception = exceptions
            uplink.validate_telemetry = platform.validate_telemetry
            return uplink
        verify: Any = True
        if platform.ca_bundle is not None:
            import ssl

            verify = ssl.create_default_context(cafile=str(platform.ca_bundle))
        elif not platform.verify_tls:
            log.warning("uplink: TLS certificate verification is OFF (platform.verify_tls=false)")
            verify = False
        http = httpx.AsyncClient(
            base_url=str(platform.url).rstrip("/"),
            verify=verify,
            timeout=platform.timeout_s,
            transport=transport,
            limits=httpx.Limits(max_connections=platform.concurrency + 1),
            headers={"User-Agent": "estate-edge"},
            trust_env=False,  # no surprise proxies: we talk to the configured platform only
        )
        tokens = TokenManager(http, platform.token_path, platform.client_id, platform.client_secret, clock)
        client = PlatformClient(http, tokens, estate_id=config.estate.id, gateway_id=config.estate.gateway_id,
                                use_gzip=platform.gzip, on_date_header=on_date_header)
        uplink = cls(store, client, settings, clock=clock, validator=validator, http=http)
        uplink.report_by_exception = exceptions
        uplink.validate_telemetry = platform.validate_telemetry
        return uplink

    async def __aenter__(self) -> Uplink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        for lane, state in self.lanes.items():
            state.reset_to(await self.store.cursor(lane))
        self._workers = [
            asyncio.create_task(self._worker(i), name=f"uplink-worker-{i}") for i in range(self.settings.concurrency)
        ]

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        await self._store_due_acks()
        await self.client.aclose()
        if self._http is not None:
            await self._http.aclose()

    def wake(self) -> None:
        """New records were stored: look now rather than at the next idle poll."""
        self._wake.set()

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        return {
            "breaker": self.breaker.state.value,
            "breaker_opened": self.breaker.times_opened,
            "batches_sent": self.batches_sent,
            "failures": self.failures,
            "rejections": self.rejections,
            "last_error": self.last_error,
            "error_codes": dict(self.client.error_codes),
            "lanes": {lane.value: {"acked": s.acked, "sent": s.sent_records, "dead_letters": s.dead_letters,
                                   "in_flight": len(s.in_flight)} for lane, s in self.lanes.items()},
        }

    async def drained(self) -> bool:
        """True when every lane's durable cursor has reached its newest record."""
        for lane in LANE_PRIORITY:
            if await self.store.has_pending(lane):
                return False
        return True

    # ------------------------------------------------------------------ workers
    async def _worker(self, index: int) -> None:
        while True:
            await self._wait_until_allowed()
            batch = await self._next_batch()
            if batch is None:
                self._wake.clear()
                await wait_event(self._wake, self.settings.idle_poll_s)
                continue
            # Another worker may have failed (backoff, Retry-After, breaker) while we were leasing.
            if self.clock.monotonic() < self._not_before or not self.breaker.allow():
                self.lanes[batch.lane].requeue(batch)
                await self.clock.sleep(0.02)
                continue
            await self._send(batch)

    async def _wait_until_allowed(self) -> None:
        while True:
            wait = max(self._not_before - self.clock.monotonic(), self.breaker.seconds_until_probe())
            if wait <= 0:
                return
            await self.clock.sleep(min(wait, 1.0))  # the clock's own wait: a test moves it by hand

    async def _next_batch(self) -> Batch | None:
        async with self._lease_lock:
            for lane in LANE_PRIORITY:
                state = self.lanes[lane]
                if state.retry:
                    return state.retry.popleft()
                now = time.monotonic()  # a cost heuristic, not a timing rule: the real clock even under test
                lingering = lane is Lane.TELEMETRY and now - state.partial_at < TELEMETRY_LINGER_S
                if not lingering and (state.checked_empty_at is None or now - state.checked_empty_at >= LANE_RECHECK_S):
                    records = await self.store.pending(lane, state.leased, self.settings.batch_size)
                    if records:
                        state.checked_empty_at = None
                        if len(records) < self.settings.batch_size:
                            state.partial_at = now
                        return state.lease(records)
                    state.checked_empty_at = now
                if state.in_flight:
                    # A higher lane's last batch is still on the wire: lower lanes wait for its answer,
                    # so after an outage every alarm is at the platform before the first telemetry.
                    return None
        return None

    async def _send(self, batch: Batch) -> None:
        state = self.lanes[batch.lane]
        batch.attempts += 1
        if batch.attempts == 1 and batch.lane is Lane.TELEMETRY and self.report_by_exception is not None:
            # Points that say nothing new leave their record; a record left with none is not sent.
            keep = self.report_by_exception.filter_records(row.payload for row in batch.rows)
            batch.rows = [row for row, kept in zip(batch.rows, keep, strict=True) if kept]
            if not batch.rows:  # nothing new in it: acknowledged as if sent (the store keeps every reading)
                await self._complete(batch)
                return
        # Every record names its estate and gateway (contract v2 on); the store keeps neither per row.
        origin = {"estate_id": self.client.estate_id, "gateway_id": self.client.gateway_id}
        for row in batch.rows:
            row.payload.update(origin)
        check = self.validator is not None and (batch.lane is not Lane.TELEMETRY or self.validate_telemetry)
        if check and await self._drop_locally_invalid(batch) and not batch.rows:
            await self._complete(batch)
            return
        try:
            await self._send_evidence(batch)
            await self.client.send(batch.lane.value, [row.payload for row in batch.rows])
        except UplinkRejected as exc:
            self.breaker.record_success()  # the platform is up; the records are the problem
            await self._dead_letter(batch, exc)
            return
        except UplinkUnavailable as exc:
            if exc.code == "EVIDENCE_MISSING":
                self._evidence_sent.clear()  # the platform lost pictures we sent: send them again
            self._failed(batch, exc, exc.retry_after)
            return
        except UplinkError as exc:
            self._failed(batch, exc, None)
            return
        self.breaker.record_success()
        self.backoff.reset()
        self.batches_sent += 1
        state.sent_records += len(batch.rows)
        await self._complete(batch)

    async def _send_evidence(self, batch: Batch) -> None:
        """Upload each picture the batch references and the platform does not have yet, once.

        Pictures are named by their SHA-256, so the event and the alarm step that share one picture
        share one upload; the platform stores a picture idempotently, so a resend after a crash is
        harmless. Remembers the last ``EVIDENCE_MEMORY`` ids.
        """
        for row in batch.rows:
            for evidence_id, jpeg in row.attachments.items():
                if evidence_id in self._evidence_sent:
                    continue
                await self.client.upload_evidence(evidence_id, jpeg)
                self._evidence_sent[evidence_id] = None
                if len(self._evidence_sent) > EVIDENCE_MEMORY:
                    self._evidence_sent.popitem(last=False)

    async def _complete(self, batch: Batch) -> None:
        """Mark the batch done and store the lane's cursor if it moved: one write for many batches.

        While one cursor write of the lane is on its way, later completions only raise ``ack_due``;
        the writing worker stores the newest value next (the store keeps the highest cursor, so
        writes never go back). ``acked`` moves only once the store has it (durable).
        """
        state = self.lanes[batch.lane]
        moved = state.complete(batch)
        if moved is None:
            return
        state.ack_due = max(state.ack_due, moved)
        if state.ack_writing:
            return
        state.ack_writing = True
        try:
            while state.ack_due > state.acked:
                target = state.ack_due
                await self.store.ack(batch.lane, target)
                state.acked = target
        finally:
            state.ack_writing = False

    async def _store_due_acks(self) -> None:
        """At stop: store the cursors of completions whose write the stopped workers left undone."""
        for lane, state in self.lanes.items():
            if state.ack_due > state.acked:
                try:
                    await self.store.ack(lane, state.ack_due)
                except StoreError as exc:  # the store went first: those batches are resent, harmlessly
                    log.warning("uplink: %s cursor not stored at stop: %s", lane.value, exc)
                    continue
                state.acked = state.ack_due

    def _failed(self, batch: Batch, exc: UplinkError, retry_after: float | None) -> None:
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.breaker.record_failure()
        delay = self.backoff.next_delay()
        if retry_after is not None:
            delay = max(delay, retry_after)
        self._not_before = max(self._not_before, self.clock.monotonic() + delay)
        log.warning("uplink: %s batch of %d failed (%s); retry in %.1f s", batch.lane.value, len(batch.rows),
                    exc, delay)
        self.lanes[batch.lane].requeue(batch)

    async def _dead_letter(self, batch: Batch, exc: UplinkRejected) -> None:
        """Move the records the platform named aside, resend the rest; never block the lane."""
        self.rejections += 1
        named = exc.record_errors
        if named:
            bad = [r for r in batch.rows if r.id in named]
        else:
            bad = list(batch.rows) if len(batch.rows) == 1 else []
        if not bad:
            # The platform rejected the batch without naming records: split it to find the culprit(s).
            if len(batch.rows) > 1:
                await self._split(batch)
                return
            bad = list(batch.rows)
        await self.store.dead_letter(batch.lane, [
            (r.id, plain(r.payload), exc.code, named.get(r.id, str(exc))) for r in bad
        ])
        state = self.lanes[batch.lane]
        state.dead_letters += len(bad)
        log.error("uplink: %d %s record(s) dead-lettered: %s", len(bad), batch.lane.value,
                  "; ".join(f"{r.id}: {named.get(r.id, str(exc))}" for r in bad[:5]))
        bad_ids = {r.id for r in bad}
        batch.rows = [r for r in batch.rows if r.id not in bad_ids]
        if batch.rows:
            state.requeue(batch)
        else:
            await self._complete(batch)

    async def _split(self, batch: Batch) -> None:
        state = self.lanes[batch.lane]
        half = len(batch.rows) // 2
        first = Batch(batch.lane, batch.rows[:half], batch.rows[half - 1].id)
        second = Batch(batch.lane, batch.rows[half:], batch.last_id)
        index = state.in_flight.index(batch)
        state.in_flight[index] = second
        state.in_flight.insert(index, first)
        state.requeue(first)
        state.requeue(second)

    async def _drop_locally_invalid(self, batch: Batch) -> bool:
        """Validate against our own published schema; invalid records never leave the gateway."""
        assert self.validator is not None
        bad: list[tuple[str, dict[str, Any], str | None, str]] = []
        for row in batch.rows:
            errors = self.validator(batch.lane.value, plain(row.payload))
            if errors:
                bad.append((row.id, row.payload, "LOCAL_SCHEMA", "; ".join(errors)))
        if not bad:
            return False
        await self.store.dead_letter(batch.lane, bad)
        self.lanes[batch.lane].dead_letters += len(bad)
        bad_ids = {b[0] for b in bad}
        batch.rows = [r for r in batch.rows if r.id not in bad_ids]
        log.error("uplink: %d %s record(s) failed local schema validation and were dead-lettered",
                  len(bad), batch.lane.value)
        return True


def _mqtt_client(config: EstateConfig) -> MqttPlatformClient:
    """The MQTT transport (``edge.uplink.mqtt_transport``) for ``platform.transport: mqtt``."""
    from edge.uplink.mqtt_transport import MqttPlatformClient, MqttUplinkSettings

    broker = config.platform.mqtt
    if broker is None:  # PlatformConfig's validator requires the section with transport: mqtt
        raise ConfigError("platform.mqtt: the MQTT uplink needs its broker section")
    settings = MqttUplinkSettings(
        broker.host, broker.port, client_id=broker.client_id,
        username=broker.username, password=broker.password.get_secret_value() if broker.password else None,
        tls=broker.tls, ca_file=broker.ca_file, cert_file=broker.cert_file, key_file=broker.key_file,
        topic_prefix=broker.topic_prefix, gzip=config.platform.gzip, ack_timeout_s=broker.ack_timeout_s,
    )
    return MqttPlatformClient(settings, estate_id=config.estate.id, gateway_id=config.estate.gateway_id)

