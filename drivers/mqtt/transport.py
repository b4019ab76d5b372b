"""One broker connection kept up for a source: TLS, persistent session, jittered reconnect, acks after commit.

Why acknowledge by hand: paho acknowledges a QoS 1 message as soon as its callback returns, so a
gateway killed between receipt and the store's commit would lose messages the broker believes
delivered. Here the source acknowledges (``ack``) only after the sink has committed the message's
readings; the broker redelivers anything unacknowledged after a reconnect (at least once: a
message committed but not yet acknowledged when the link drops is stored twice, with the same
payload timestamp). Acknowledgements are sent in arrival order, as MQTT 3.1.1 section 4.6 asks.

The broker's in-flight window (Mosquitto ``max_inflight_messages``, EMQX ``max_inflight``) bounds
how many messages wait for a commit, which is the backpressure: the gateway drops nothing, the
broker queues. Size the window to at least one commit's worth of messages (a few hundred) or the
throughput is the window per commit.

Reconnect: the first wait is ``backoff_initial_s``, doubled per failed try up to ``backoff_max_s``,
each drawn uniformly from [half, full] of that (equal jitter) so a fleet of gateways does not
return in step after a broker restart. Errors are mapped to ``DeviceUnreachable`` text in
``last_error``; only state transitions are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import paho.mqtt.client as paho

from edge.backoff import Backoff

log = logging.getLogger(__name__)

MAX_QUEUED_INCOMING = 200_000  # QoS 0 only: beyond this aiomqtt drops (QoS 1 is bounded by the broker's window)


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    qos: int = 1
    persistent_session: bool = True
    keepalive_s: int = 60
    connect_timeout_s: float = 10.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0


@dataclass(frozen=True, slots=True)
class AckToken:
    """Which connection a message came on; an ack for an older connection is dropped (the broker redelivers)."""

    generation: int
    mid: int
    qos: int


def tls_context(settings: BrokerSettings) -> ssl.SSLContext | None:
    """Verified TLS (hostname and chain) with an optional client certificate; ``None`` without TLS."""
    if not settings.tls:
        return None
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    if settings.cert_file is not None:
        context.load_cert_chain(str(settings.cert_file), str(settings.key_file) if settings.key_file else None)
    return context


class BrokerSession:
    """Keeps one subscription session to a broker up until cancelled; see the module docstring."""

    def __init__(self, settings: BrokerSettings, *, name: str) -> None:
        self.settings = settings
        self.name = name
        self.connected = False
        self.connects = 0
        self.disconnects = 0
        self.last_error: str | None = None
        self.generation = 0
        self._client: aiomqtt.Client | None = None
        self._drop = asyncio.Event()
        self._ready = asyncio.Event()

    async def run(self, filters: Sequence[str], on_message: Callable[[paho.MQTTMessage, AckToken], None]) -> None:
        """Connect, subscribe to ``filters`` and feed every message to ``on_message`` until cancelled."""
        backoff = Backoff(self.settings.backoff_initial_s, self.settings.backoff_max_s, jitter="equal")
        while True:
            try:
                await self._session(filters, on_message)
                backoff.reset()  # dropped on purpose (a failed commit): reconnect at once
                continue
            except aiomqtt.MqttError as exc:
                self._lost(f"broker {self.settings.host}:{self.settings.port}: {exc}")
            except (OSError, ssl.SSLError) as exc:
                self._lost(f"broker {self.settings.host}:{self.settings.port}: {type(exc).__name__}: {exc}")
            await asyncio.sleep(backoff.next_delay())

    async def wait_connected(self) -> None:
        await self._ready.wait()

    async def _session(self, filters: Sequence[str], on_message: Callable[[paho.MQTTMessage, AckToken], None]) -> None:
        s = self.settings
        client = aiomqtt.Client(
            s.host, s.port,
            identifier=s.client_id,
            username=s.username,
            password=s.password,
            clean_session=not s.persistent_session,
            keepalive=s.keepalive_s,
            timeout=s.connect_timeout_s,
            tls_context=tls_context(s),
            max_queued_incoming_messages=MAX_QUEUED_INCOMING,
        )
        # The one reach into aiomqtt's paho client (aiomqtt is pinned): acks after commit, see above,
        # and messages handed straight from paho's read callback to ``on_message`` (see ``_read``).
        paho_client: paho.Client = client._client
        paho_client.manual_ack_set(True)
        paho_client.disable_logger()  # a log call per packet costs more than decoding the payload
        generation = self.generation + 1
        paho_client.on_message = lambda _c, _u, m: on_message(m, AckToken(generation, m.mid, m.qos))
        async with client:
            self.generation = generation
            self._client = client
            if filters:
                await client.subscribe([(f, s.qos) for f in filters])
            self.connected = True
            self.connects += 1
            if self.connects > 1 or self.last_error:
                log.info("%s: connected to %s:%d again", self.name, s.host, s.port)
            self.last_error = None
            self._ready.set()
            self._drop.clear()
            reader = asyncio.create_task(self._read(client), name=f"{self.name}:read")
            dropper = asyncio.create_task(self._drop.wait(), name=f"{self.name}:drop")
            try:
                done, _ = await asyncio.wait({reader, dropper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (reader, dropper):
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await reader
                if self.connected:
                    self.disconnects += 1
                self.connected = False
                self._client = None
                self._ready.clear()
            if reader in done:
                reader.result()  # re-raises the MqttError that ended the read loop

    async def _read(self, client: aiomqtt.Client) -> None:
        """Wait for the connection to end; aiomqtt's iterator raises ``MqttError`` when it does.

        Messages never reach aiomqtt's queue: paho's ``on_message`` is pointed at the source's
        handler (see ``_session``), which saves a queue hop, a Message copy and a task per message
        (aiomqtt's iterator cost more than decoding and storing in the ingest bench).
        """
        async for _ in client.messages:
            pass

    def ack(self, token: AckToken) -> bool:
        """PUBACK one committed message; False when its connection is gone (the broker will redeliver)."""
        client = self._client
        if client is None or token.generation != self.generation or token.qos == 0:
            return False
        client._client.ack(token.mid, token.qos)
        return True

    def reconnect(self) -> None:
        """Drop the connection so the broker redelivers every unacknowledged message (after a failed commit)."""
        self._drop.set()

    def _lost(self, error: str) -> None:
        if self.last_error is None:  # the first failure since the last good connection
            log.warning("%s: %s", self.name, error)
        self.connected = False
        self.last_error = error
        self._client = None
        self._ready.clear()
