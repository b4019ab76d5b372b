"""Notifier plugins, built from config through an explicit table (no import-time discovery).

Adding a notifier: one config model in ``edge.config.alarms`` (a new ``kind``), one module here
with a class that has ``name``, ``async send(notification)`` and ``async close()``, one line below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edge.alarms.notify import Notifier

if TYPE_CHECKING:
    from edge.config.alarms import NotifierConfig


def _builders() -> dict[str, Callable[[Any, str], Notifier]]:
    from edge.alarms.notifiers.dingtalk import DingTalkNotifier
    from edge.alarms.notifiers.mqtt import MqttNotifier
    from edge.alarms.notifiers.webhook import WebhookNotifier
    from edge.alarms.notifiers.wecom import WeComNotifier

    return {
        "webhook": lambda cfg, gw: WebhookNotifier(cfg),
        "mqtt": lambda cfg, gw: MqttNotifier(cfg, gateway_id=gw),
        "wecom": lambda cfg, gw: WeComNotifier(cfg),
        "dingtalk": lambda cfg, gw: DingTalkNotifier(cfg),
    }


def build_notifier(cfg: NotifierConfig, gateway_id: str) -> Notifier:
    """The notifier for one ``alarms.notifiers[]`` entry."""
    return _builders()[cfg.kind](cfg, gateway_id)
