"""Alarm handling: escalation of unacknowledged alarms and the notifiers that push them to staff.

GB/T 20299.3 draft 8.1.8 asks that alarms reach the responsible person; seed 002 5.2.1.2 d)-e)
asks for a closed loop (recognise, alarm, dispose, upload). Notifiers are a discriminated union on
``kind``: a generic JSON ``webhook``, ``mqtt``, and the two group-robot webhooks staff here use,
``wecom`` (企业微信群机器人) and ``dingtalk`` (钉钉自定义机器人). Robot keys, tokens and passwords are
secrets: give them as ``!secret name``.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, HttpUrl, SecretStr, model_validator

from edge.config.common import Identifier, Section

AlarmStep = Literal["raised", "acknowledged", "escalated", "resolved", "cleared"]
SeverityName = Literal["info", "warning", "major", "critical"]


class _NotifierBase(Section):
    id: Identifier = Field(description="Name of this notifier in logs and metrics, e.g. 'duty-room-wecom'.")
    steps: list[AlarmStep] = Field(
        default_factory=lambda: list[AlarmStep](["raised", "escalated", "cleared", "resolved"]),
        description="Which alarm steps this notifier is told about.",
    )
    min_severity: SeverityName = Field("warning", description="Alarms below this severity are not sent here.")
    min_escalation_level: int = Field(
        1, ge=1, le=10,
        description="For 'escalated' steps: only from this escalation level on (e.g. 2 = the manager's robot).",
    )
    codes: list[str] = Field(
        default_factory=list,
        description="Only alarm codes starting with one of these prefixes (e.g. 'fire.'); empty = all codes.",
    )
    timeout_s: float = Field(10.0, gt=0, le=120, description="Per-attempt timeout, seconds.")
    attempts: int = Field(3, ge=1, le=10, description="Tries per notification before it is given up (and counted).")
    max_per_minute: int = Field(
        20, ge=1, le=6000,
        description="Send at most this many messages per minute (WeCom and DingTalk robots allow 20).",
    )


class _HttpTls(Section):
    ca_bundle: Path | None = Field(None, description="PEM bundle of extra CAs to trust. Verification stays on.")
    verify_tls: bool = Field(True, description="Verify the server's certificate. Only turn off in a lab.")


class WebhookNotifierConfig(_NotifierBase, _HttpTls):
    """POSTs the alarm step as JSON (the alarm upload payload plus estate and device context)."""

    kind: Literal["webhook"]
    url: HttpUrl = Field(description="Where to POST.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers (not secret).")
    secret: SecretStr | None = Field(
        None, description="If set, the body is signed: header X-Estate-Edge-Signature: sha256=<hex HMAC>."
    )


class MqttNotifierConfig(_NotifierBase):
    """Publishes the alarm step as JSON to an MQTT broker (QoS 1 by default)."""

    kind: Literal["mqtt"]
    host: str = Field(description="Broker host name or IP.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 for TLS).")
    topic: str = Field(
        "estate-edge/{estate_id}/alarms/{code}",
        description="Topic template; {estate_id}, {gateway_id}, {code}, {state}, {device_id} are filled in.",
    )
    qos: Literal[0, 1, 2] = Field(1, description="MQTT QoS of the publish.")
    retain: bool = Field(False, description="Publish retained.")
    username: str | None = Field(None, description="Broker user name.")
    password: SecretStr | None = Field(None, description="Broker password; give as `!secret name`.")
    tls: bool = Field(False, description="Connect with TLS (certificate verified).")
    ca_bundle: Path | None = Field(None, description="PEM bundle of the broker's CA, for TLS.")
    client_id: str | None = Field(None, description="MQTT client id; default estate-edge-<gateway>-<notifier>.")


class WeComNotifierConfig(_NotifierBase, _HttpTls):
    """企业微信群机器人: POST {msgtype: markdown|text} to .../webhook/send?key=KEY."""

    kind: Literal["wecom"]
    url: HttpUrl = Field(HttpUrl("https://qyapi.weixin.qq.com/cgi-bin/webhook/send"), description="Robot endpoint.")
    key: SecretStr = Field(description="The robot's key (the key=... part of its webhook address).")
    msgtype: Literal["markdown", "text"] = Field(
        "markdown", description="markdown reads better; text is needed to @-mention by mobile number."
    )
    mentioned_mobiles: list[str] = Field(
        default_factory=list, description="Mobile numbers to @-mention (text messages only; '@all' for everyone)."
    )


class DingTalkNotifierConfig(_NotifierBase, _HttpTls):
    """钉钉自定义机器人: POST {msgtype: markdown} to .../robot/send?access_token=TOKEN, optionally signed."""

    kind: Literal["dingtalk"]
    url: HttpUrl = Field(HttpUrl("https://oapi.dingtalk.com/robot/send"), description="Robot endpoint.")
    access_token: SecretStr = Field(description="The robot's access_token.")
    sign_secret: SecretStr | None = Field(
        None, description="The robot's 加签 secret (SEC...): requests then carry timestamp and HMAC-SHA256 sign."
    )
    at_mobiles: list[str] = Field(default_factory=list, description="Mobile numbers to @-mention.")
    at_all: bool = Field(False, description="@ everyone in the group.")


NotifierConfig = Annotated[
    WebhookNotifierConfig | MqttNotifierConfig | WeComNotifierConfig | DingTalkNotifierConfig,
    Field(discriminator="kind"),
]


class AlarmsConfig(Section):
    escalate_after_min: list[float] = Field(
        default_factory=lambda: [15.0, 60.0],
        description="Escalate an alarm still unacknowledged this many minutes after it was raised; "
        "one entry per escalation level (level 1, level 2, ...). Empty = never escalate.",
    )
    check_interval_s: float = Field(
        30.0, gt=0, le=3600, description="How often unacknowledged alarms are checked for escalation, seconds."
    )
    queue_max: int = Field(
        1000, ge=10, le=100_000,
        description="Notifications waiting to be sent, at most; beyond it the oldest are dropped (and counted).",
    )
    notifiers: list[NotifierConfig] = Field(default_factory=list, description="Where alarm steps are pushed.")

    @model_validator(mode="after")
    def _checks(self) -> AlarmsConfig:
        steps = self.escalate_after_min
        if any(m <= 0 for m in steps) or any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError("escalate_after_min must be positive and strictly increasing, e.g. [15, 60]")
        ids = [n.id for n in self.notifiers]
        for dup in sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"notifier id {dup!r} is used more than once")
        return self
