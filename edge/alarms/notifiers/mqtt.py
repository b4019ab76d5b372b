"""MQTT notifier: publish the alarm step as JSON (``Notification.payload()``), QoS 1 by default.

One connection, opened on the first send and kept; any MQTT error closes it and the send fails
(the worker retries with backoff, reconnecting). With QoS 1 ``publish`` returns once the broker
acknowledged (PUBACK), so "sent" means the broker has it.
"""

from __future__ import annotations

import contextlib
import json
import ssl

import aiomqtt

from edge.alarms.notify import Notification, NotifyError
from edge.config.alarms import MqttNotifierConfig


class MqttNotifier:
    def __init__(self, cfg: MqttNotifierConfig, *, gateway_id: str) -> None:
        self.name = cfg.id
        self.cfg = cfg
        self.gateway_id = gateway_id
        self._client: aiomqtt.Client | None = None

    def topic(self, n: Notification) -> str:
        r = n.record
        return self.cfg.topic.format(estate_id=n.estate_id, gateway_id=n.gateway_id, code=r.code,
                                     state=str(r.state), device_id=r.device_id or "-")

    async def _connect(self) -> aiomqtt.Client:
        if self._client is not None:
            return self._client
        tls_context = None
        if self.cfg.tls:
            tls_context = ssl.create_default_context(cafile=str(self.cfg.ca_bundle) if self.cfg.ca_bundle else None)
        client = aiomqtt.Client(
            self.cfg.host, self.cfg.port,
            username=self.cfg.username,
            password=self.cfg.password.get_secret_value() if self.cfg.password else None,
            identifier=self.cfg.client_id or f"estate-edge-{self.gateway_id}-{self.name}",
            tls_context=tls_context,
            timeout=self.cfg.timeout_s,
        )
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise NotifyError(f"{self.name}: cannot connect to {self.cfg.host}:{self.cfg.port}: {exc}") from exc
        self._client = client
        return client

    async def send(self, notification: Notification) -> None:
        client = await self._connect()
        payload = json.dumps(notification.payload(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            await client.publish(self.topic(notification), payload, qos=self.cfg.qos, retain=self.cfg.retain,
                                 timeout=self.cfg.timeout_s)
        except aiomqtt.MqttError as exc:
            await self.close()
            raise NotifyError(f"{self.name}: publish failed: {exc}") from exc

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)
