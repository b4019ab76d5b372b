"""企业微信群机器人 (WeCom group robot) webhook format.

    POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY
    {"msgtype": "markdown", "markdown": {"content": "..."}}                 (at most 4096 bytes)
    {"msgtype": "text", "text": {"content": "...", "mentioned_mobile_list": ["138...", "@all"]}}
                                                                             (at most 2048 bytes)
    answer: HTTP 200 {"errcode": 0, "errmsg": "ok"}; 45009 = over the 20 messages/minute limit.

Markdown cannot @-mention by mobile number, so ``mentioned_mobiles`` needs ``msgtype: text``.
"""

from __future__ import annotations

import json

from edge.alarms.notifiers.http import make_client, post_json, robot_result
from edge.alarms.notify import Notification
from edge.config.alarms import WeComNotifierConfig
from edge.records import AlarmState, Severity

MARKDOWN_MAX_BYTES = 4096
TEXT_MAX_BYTES = 2048
RETRY_ERRCODES = frozenset({-1, 45009})  # system busy; API frequency limit

_COLOUR = {Severity.CRITICAL: "warning", Severity.MAJOR: "warning", Severity.WARNING: "comment",
           Severity.INFO: "info"}


def truncate_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", errors="ignore") + "..."


def markdown(n: Notification) -> str:
    colour = "info" if n.step in (AlarmState.CLEARED, AlarmState.RESOLVED) else _COLOUR[n.record.severity]
    lines = [f'### <font color="{colour}">{n.title()}</font>']
    lines += [f"> {line}" for line in n.lines()]
    return truncate_utf8("\n".join(lines), MARKDOWN_MAX_BYTES)


def body(n: Notification, cfg: WeComNotifierConfig) -> dict[str, object]:
    if cfg.msgtype == "text":
        text: dict[str, object] = {"content": truncate_utf8("\n".join([n.title(), *n.lines()]), TEXT_MAX_BYTES)}
        if cfg.mentioned_mobiles:
            text["mentioned_mobile_list"] = list(cfg.mentioned_mobiles)
        return {"msgtype": "text", "text": text}
    return {"msgtype": "markdown", "markdown": {"content": markdown(n)}}


class WeComNotifier:
    def __init__(self, cfg: WeComNotifierConfig) -> None:
        self.name = cfg.id
        self.cfg = cfg
        self._client = make_client(cfg.timeout_s, cfg.ca_bundle, cfg.verify_tls)

    async def send(self, notification: Notification) -> None:
        payload = json.dumps(body(notification, self.cfg), ensure_ascii=False).encode("utf-8")
        response = await post_json(self._client, self.name, str(self.cfg.url), payload,
                                   params={"key": self.cfg.key.get_secret_value()})
        robot_result(self.name, response, RETRY_ERRCODES)

    async def close(self) -> None:
        await self._client.aclose()
