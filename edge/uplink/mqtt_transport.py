"""MQTT as a second northbound transport: the same batches as HTTPS, published to a broker cluster.

Some city platforms ingest thousands of estates through an MQTT broker cluster (EMQX and the
like) instead of HTTPS. ``MqttPlatformClient`` has the one method ``edge.uplink.Uplink`` calls
on its client, ``send(kind, records) -> Ack`` (plus ``error_codes``), so it plugs into the same
``Uplink``: the same outbox lanes and priorities, the same circuit breaker, backoff and dead
letters; only the wire differs. Choosing it per estate (a ``platform.transport`` setting and a
branch in ``Uplink.from_config``) is left to the uplink's owners, who are changing those files now:
``Uplink(store, MqttPlatformClient(settings, estate_id=..., gateway_id=...), ...)`` is all it takes.

What goes on the wire:

* one message per batch, whose payload is exactly the HTTPS request body (``gateway_id``,
  ``estate_id``, ``kind``, ``sent_at``, ``records``; each record carries its own ``id``, so the
  consumer deduplicates by record id), optionally gzip-compressed (then the MQTT v5 content type
  says ``application/json+gzip``);
* on topic ``{prefix}/{estate_id}/{gateway_id}/{kind}``, QoS 1, never retained;
* MQTT v5 user property ``idempotency-key`` with the same derived key as the HTTPS header, so a
  consumer can also drop a replayed batch whole;
* a persistent session (clean start off, session expiry ``session_expiry_s``) with a fixed client
  id, TLS with the broker's CA and optionally a client certificate, or username / password.

The acknowledgement is the broker's PUBACK, awaited for at most ``ack_timeout_s``: a broker that
accepts the connection but never acknowledges raises ``UplinkUnavailable``, so the ``Uplink``
does not advance the lane's cursor and sends the batch again after its backoff (the consumer drops
the repeat by record id). A PUBACK means the broker has the message, not that a consumer processed
it; that is the contract of MQTT ingestion, and why records keep their ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.errors import UplinkUnavailable
from edge.uplink.client import Ack, envelope_body, idempotency_key

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MqttUplinkSettings:
    host: str
    port: int = 8883
    client_id: str | None = None  # default estate-edge-uplink-<gateway>
    username: str | None = None
    password: str | None = None
    tls: bool = True
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    topic_prefix: str = "estate-edge"
    gzip: bool = False
    keepalive_s: int = 60
    connect_timeout_s: float = 10.0
    ack_timeout_s: float = 10.0
    session_expiry_s: int = 7 * 86400


class MqttPlatformClient:
    """The uplink's client over MQTT: ``send`` publishes one batch and returns once the broker acknowledged it."""

    def __init__(self, settings: MqttUplinkSettings, *, estate_id: str, gateway_id: str) -> None:
        self.settings = settings
        self.estate_id = estate_id
        self.gateway_id = gateway_id
        self.client_id = settings.client_id or f"estate-edge-uplink-{gateway_id}"
        self.error_codes: dict[str, int] = {}
        self.published = 0
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()

    def topic(self, kind: str) -> str:
        return f"{self.settings.topic_prefix}/{self.estate_id}/{self.gateway_id}/{kind}"

    def body(self, kind: str, records: Sequence[dict[str, Any]]) -> bytes:
        """The HTTPS request body, byte for byte the same envelope (see ``PlatformClient.send``)."""
        body = envelope_body(kind, self.estate_id, self.gateway_id, records)
        return gzip.compress(body, compresslevel=4) if self.settings.gzip else body

    async def send(self, kind: str, records: Sequence[dict[str, Any]]) -> Ack:
        ids = [str(r["id"]) for r in records]
        payload = self.body(kind, records)
        properties = Properties(PacketTypes.PUBLISH)
        properties.UserProperty = [("idempotency-key", idempotency_key(kind, ids)), ("records", str(len(ids)))]
        properties.ContentType = "application/json+gzip" if self.settings.gzip else "application/json"
        client = await self._connected()
        try:
            await client.publish(self.topic(kind), payload, qos=1, retain=False, properties=properties,
                                 timeout=self.settings.ack_timeout_s)
        except aiomqtt.MqttError as exc:
            await self._drop()
            code = "NO_PUBACK" if "timed out" in str(exc).lower() or "timeout" in str(exc).lower() else "MQTT"
            self._count(code)
            raise UplinkUnavailable(f"broker {self.settings.host}:{self.settings.port} did not acknowledge the batch "
                                    f"of {len(ids)}: {exc}", code=code) from exc
        self.published += 1
        return Ack(len(ids), 0)

    async def upload_evidence(self, evidence_id: str, jpeg: bytes) -> None:
        """Publish one evidence picture (raw JPEG, QoS 1) on ``{prefix}/{estate}/{gateway}/evidence/{id}``.

        The id is the picture's SHA-256 (``edge.store.codec.evidence_id``): consumers store it once
        and resolve the records' ``evidence.id`` against it.
        """
        properties = Properties(PacketTypes.PUBLISH)
        properties.ContentType = "image/jpeg"
        client = await self._connected()
        try:
            await client.publish(f"{self.topic('evidence')}/{evidence_id}", jpeg, qos=1, retain=False,
                                 properties=properties, timeout=self.settings.ack_timeout_s)
        except aiomqtt.MqttError as exc:
            await self._drop()
            self._count("MQTT")
            raise UplinkUnavailable(f"broker {self.settings.host}:{self.settings.port} did not acknowledge "
                                    f"evidence {evidence_id}: {exc}", code="MQTT") from exc

    async def _connected(self) -> aiomqtt.Client:
        async with self._lock:
            if self._client is not None:
                return self._client
            s = self.settings
            connect_properties = Properties(PacketTypes.CONNECT)
            connect_properties.SessionExpiryInterval = s.session_expiry_s
            client = aiomqtt.Client(
                s.host, s.port, identifier=self.client_id, username=s.username, password=s.password,
                protocol=aiomqtt.ProtocolVersion.V5, clean_start=False, properties=connect_properties,
                keepalive=s.keepalive_s, timeout=s.connect_timeout_s,
                tls_context=self._tls_context(),
            )
            try:
                await client.__aenter__()
            except aiomqtt.MqttError as exc:
                self._count("CONNECT")
                raise UplinkUnavailable(f"broker {s.host}:{s.port} unreachable: {exc}", code="CONNECT") from exc
            self._client = client
            return client

    def _tls_context(self) -> ssl.SSLContext | None:
        """Verified TLS (chain and host name), with the client certificate when one is configured."""
        s = self.settings
        if not s.tls:
            return None
        context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
        if s.cert_file is not None:
            context.load_cert_chain(str(s.cert_file), str(s.key_file) if s.key_file else None)
        return context

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await client.__aexit__(None, None, None)

    async def aclose(self) -> None:
        await self._drop()

    def _count(self, code: str) -> None:
        self.error_codes[code] = self.error_codes.get(code, 0) + 1
