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
from typing import NamedTuple

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from edge.backoff import Backoff
from edge.tasks import retry_after

log = logging.getLogger(__name__)

MAX_QUEUED_INCOMING = 200_000  # QoS 0 only: beyond this aiomqtt drops (QoS 1 is bounded by the broker's window)
READ_CHUNK = 65_536  # bytes read from the broker socket at once (about 250 NB-IoT reports)


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


class AckToken(NamedTuple):
    """Which connection a message came on; an ack for an older connection is dropped (the broker redelivers).

    A ``NamedTuple`` like ``Reading``: one is made per message, and a frozen dataclass costs three
    times as much to build.
    """

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


class BatchedReader:
    """Reads the broker socket in chunks and hands paho every packet of a chunk in one event-loop turn.

    Why: paho reads a packet with one ``recv`` per header byte and one for the rest, and aiomqtt's
    reader callback reads one packet per readiness event, so a backlog costs an event-loop turn
    (epoll, callback dispatch) and four system calls per message: more than decoding and storing it
    in the ingest bench. Installed on a paho client, paho's ``_sock_recv`` takes bytes from a buffer
    filled by at most one ``recv(READ_CHUNK)`` per turn, and ``loop_read`` (what aiomqtt's reader
    callback calls) keeps reading packets until that buffer is used up.

    Nothing stays buffered between turns: a packet cut at the chunk's end stays in paho's own
    partial-packet state (a second ``recv`` in the same turn answers "would block"), and the rest of
    it is still in the socket, so the event loop's readiness remains the only wake-up. TLS: paho's
    own ``_sock_recv`` still does the reading (its want-read mapping), and aiomqtt's callback calls
    ``loop_read`` again while the TLS object holds decrypted bytes. Written against paho-mqtt 2.2
    (pinned in constraints.txt), whose ``_packet_read`` is the only caller of ``_sock_recv``.
    """

    def __init__(self, client: paho.Client) -> None:
        self._client = client
        self._recv = client._sock_recv
        self._loop_read = client.loop_read
        self._buffer = b""
        self._pos = 0
        self._fresh = True
        client._sock_recv = self.recv  # type: ignore[method-assign]
        client.loop_read = self.loop_read  # type: ignore[method-assign]

    def recv(self, bufsize: int) -> bytes:
        """Up to ``size`` bytes from the buffer; one socket read per turn refills it, then "would block"."""
        buffer, pos = self._buffer, self._pos
        if pos >= len(buffer):
            if not self._fresh:
                raise BlockingIOError
            self._fresh = False
            buffer = self._recv(READ_CHUNK)
            if not buffer:
                return buffer  # the broker closed the connection: paho sees the empty read
            self._buffer, pos = buffer, 0
        self._pos = pos + bufsize
        return buffer[pos:pos + bufsize]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read packets until the chunk of this turn is used up (or the connection fails)."""
        self._fresh = True
        rc = self._loop_read()
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._pos < len(self._buffer) and self._client._sock:
            rc = self._loop_read()
        return rc


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
            await retry_after(backoff.next_delay())

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
        # The one reach into aiomqtt's paho client (aiomqtt and paho are pinned): acks after commit, see
        # above; messages handed straight from paho's packet handler to ``on_message`` (see ``_read``),
        # past paho's per-message dispatch (two topic decodes, a filter match and two locks for the one
        # callback there is; ``on_message`` never raises); socket reads batched (``BatchedReader``).
        paho_client: paho.Client = client._client
        paho_client.manual_ack_set(True)
        paho_client.disable_logger()  # a log call per packet costs more than decoding the payload
        BatchedReader(paho_client)
        generation = self.generation + 1
        paho_client._handle_on_message = (  # type: ignore[method-assign]
            lambda message: on_message(message, AckToken(generation, message.mid, message.qos)))
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
