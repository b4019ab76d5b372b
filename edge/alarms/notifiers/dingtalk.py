r"""钉钉自定义机器人 (DingTalk custom robot) webhook format, with the optional 加签 signature.

    POST https://oapi.dingtalk.com/robot/send?access_token=TOKEN[&timestamp=MS&sign=SIGN]
    {"msgtype": "markdown", "markdown": {"title": "...", "text": "..."},
     "at": {"atMobiles": ["138..."], "isAtAll": false}}
    answer: HTTP 200 {"errcode": 0, "errmsg": "ok"}; 130101 = over the 20 messages/minute limit.

Signing: ``sign = base64(HMAC-SHA256(key=secret, msg=f"{timestamp_ms}\n{secret}"))``; httpx
URL-encodes it as a query parameter. The timestamp must be within an hour of DingTalk's clock. A
mobile number is only @-mentioned when it also appears as ``@138...`` in the text, so it is appended.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from edge.alarms.notifiers.http import make_client, post_json, robot_result
from edge.alarms.notifiers.wecom import truncate_utf8
from edge.alarms.notify import Notification
from edge.config.alarms import DingTalkNotifierConfig

TEXT_MAX_BYTES = 5000
RETRY_ERRCODES = frozenset({-1, 130101})  # system busy; sending too fast


def sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def body(n: Notification, cfg: DingTalkNotifierConfig) -> dict[str, object]:
    lines = [f"### {n.title()}", *(f"- {line}" for line in n.lines())]
    if cfg.at_mobiles:
        lines.append(" ".join(f"@{m}" for m in cfg.at_mobiles))
    return {
        "msgtype": "markdown",
        "markdown": {"title": truncate_utf8(n.title(), 200), "text": truncate_utf8("\n".join(lines), TEXT_MAX_BYTES)},
        "at": {"atMobiles": list(cfg.at_mobiles), "isAtAll": cfg.at_all},
    }


class DingTalkNotifier:
    def __init__(self, cfg: DingTalkNotifierConfig) -> None:
        self.name = cfg.id
        self.cfg = cfg
        self._client = make_client(cfg.timeout_s, cfg.ca_bundle, cfg.verify_tls)

    async def send(self, notification: Notification) -> None:
        params = {"access_token": self.cfg.access_token.get_secret_value()}
        if self.cfg.sign_secret is not None:
            # Wall time on purpose: DingTalk checks it against its own clock.
            timestamp = int(time.time() * 1000)
            params["timestamp"] = str(timestamp)
            params["sign"] = sign(self.cfg.sign_secret.get_secret_value(), timestamp)
        payload = json.dumps(body(notification, self.cfg), ensure_ascii=False).encode("utf-8")
        response = await post_json(self._client, self.name, str(self.cfg.url), payload, params=params)
        robot_result(self.name, response, RETRY_ERRCODES)

    async def close(self) -> None:
        await self._client.aclose()
