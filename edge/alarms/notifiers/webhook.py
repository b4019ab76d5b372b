"""Generic JSON webhook: POST the alarm step (``Notification.payload()``), optionally HMAC-signed.

Signature: ``X-Estate-Edge-Signature: sha256=<hex HMAC-SHA256 of the exact body with the secret>``,
so the receiver can check the message came from this gateway. ``X-Estate-Edge-Delivery`` is the
alarm step's record id: the receiver can drop a retried delivery it already has.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from edge.alarms.notifiers.http import make_client, post_json
from edge.alarms.notify import Notification
from edge.config.alarms import WebhookNotifierConfig

SIGNATURE_HEADER = "X-Estate-Edge-Signature"
DELIVERY_HEADER = "X-Estate-Edge-Delivery"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    def __init__(self, cfg: WebhookNotifierConfig) -> None:
        self.name = cfg.id
        self.cfg = cfg
        self._client = make_client(cfg.timeout_s, cfg.ca_bundle, cfg.verify_tls)

    async def send(self, notification: Notification) -> None:
        body = json.dumps(notification.payload(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {**self.cfg.headers, DELIVERY_HEADER: notification.record.id}
        if self.cfg.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.cfg.secret.get_secret_value(), body)
        await post_json(self._client, self.name, str(self.cfg.url), body, headers=headers)

    async def close(self) -> None:
        await self._client.aclose()
