"""Notifiers over real sockets: webhook (signed), WeCom and DingTalk robot formats, MQTT via Mosquitto."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import aiomqtt
import pytest
from pydantic import SecretStr

from edge.alarms import AlarmContext, AlarmManager, Notification, NotifierWorker, NotifyError, NotifyFilter
from edge.alarms.manager import DeviceInfo
from edge.alarms.notifiers import build_notifier
from edge.alarms.notifiers.dingtalk import DingTalkNotifier
from edge.alarms.notifiers.mqtt import MqttNotifier
from edge.alarms.notifiers.webhook import SIGNATURE_HEADER, WebhookNotifier
from edge.alarms.notifiers.wecom import WeComNotifier
from edge.alarms.notify import RateLimiter
from edge.clock import ManualClock
from edge.config import EstateConfig
from edge.config.alarms import (
    AlarmsConfig,
    DingTalkNotifierConfig,
    MqttNotifierConfig,
    WebhookNotifierConfig,
    WeComNotifierConfig,
)
from edge.records import AlarmRecord, AlarmState, Severity
from edge.rules import AlarmTransition, TransitionKind
from edge.store import Store
from tests.helpers.waiting import eventually

from .conftest import T0, CaptureServer, _free_port

CONTEXT = AlarmContext("EST-1", "阳光花园", "GW-1", ZoneInfo("Asia/Shanghai"),
                       {"B1-HP-01": DeviceInfo("1栋最不利点消火栓压力", "1栋 18 楼梯间")})


def worker(notifier, **filter_args) -> NotifierWorker:
    args = {"steps": frozenset({"raised", "escalated", "cleared", "resolved", "acknowledged"}), **filter_args}
    return NotifierWorker(notifier, NotifyFilter(**args), attempts=3, backoff_initial_s=0.01, backoff_max_s=0.02)


def low_pressure(at: int = 0, kind: TransitionKind = TransitionKind.RAISE) -> AlarmTransition:
    return AlarmTransition("fire.hydrant_pressure_low", "B1-HP-01", kind, T0 + timedelta(seconds=at),
                           Severity.CRITICAL, "压力 0.05 MPa 低于 0.07", device_id="B1-HP-01", point="pressure",
                           data={"value": 0.05})


async def test_webhook_signed_payload_and_retry(store: Store, clock: ManualClock, http_capture: CaptureServer) -> None:
    http_capture.answers = [(503, {}), (200, {"ok": True})]
    cfg = WebhookNotifierConfig(kind="webhook", id="ops", url=http_capture.url, secret=SecretStr("s3cret"),
                                headers={"X-Site": "sg"})
    w = worker(WebhookNotifier(cfg))
    async with AlarmManager(store, clock=clock, context=CONTEXT, workers=[w]) as manager:
        (raised,) = await manager.apply([low_pressure()])
        await manager.drain()
    assert w.stats.sent == 1 and w.stats.retries == 1 and w.stats.failed == 0
    assert len(http_capture.requests) == 2  # the 503, then the retry
    req = http_capture.requests[-1]
    expected = "sha256=" + hmac.new(b"s3cret", req.body, hashlib.sha256).hexdigest()
    assert req.headers[SIGNATURE_HEADER.lower()] == expected and req.headers["x-site"] == "sg"
    body = req.json()
    assert body["step"] == "raised" and body["estate_name"] == "阳光花园"
    assert body["alarm"]["alarm_id"] == raised.alarm_id and body["alarm"]["id"] == raised.id
    assert body["alarm"]["ts"] == "2025-03-01T01:00:00.000Z"
    assert body["device"] == {"id": "B1-HP-01", "name": "1栋最不利点消火栓压力", "location": "1栋 18 楼梯间"}


async def test_webhook_client_error_is_not_retried(store: Store, clock: ManualClock,
                                                   http_capture: CaptureServer) -> None:
    http_capture.answers = [(400, {"error": "bad"})]
    w = worker(WebhookNotifier(WebhookNotifierConfig(kind="webhook", id="ops", url=http_capture.url)))
    async with AlarmManager(store, clock=clock, context=CONTEXT, workers=[w]) as manager:
        await manager.apply([low_pressure()])
        await manager.drain()
    assert (w.stats.sent, w.stats.failed, len(http_capture.requests)) == (0, 1, 1)
    assert "HTTP 400" in (w.stats.last_error or "")


async def test_wecom_markdown_and_rate_limit_errcode(store: Store, clock: ManualClock,
                                                      http_capture: CaptureServer) -> None:
    http_capture.answers = [(200, {"errcode": 45009, "errmsg": "api freq out of limit"}),
                            (200, {"errcode": 0, "errmsg": "ok"})]
    cfg = WeComNotifierConfig(kind="wecom", id="duty-wecom", url=http_capture.url, key=SecretStr("KEY-123"))
    w = worker(WeComNotifier(cfg))
    async with AlarmManager(store, clock=clock, context=CONTEXT, workers=[w]) as manager:
        (raised,) = await manager.apply([low_pressure()])
        await manager.drain()
    assert w.stats.sent == 1 and w.stats.retries == 1
    req = http_capture.requests[-1]
    assert req.query == {"key": ["KEY-123"]}
    body = req.json()
    assert body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert content.startswith('### <font color="warning">【告警】阳光花园 1栋最不利点消火栓压力')
    assert "> 级别: 紧急 (critical)" in content and "> 时间: 2025-03-01 09:00:00" in content  # local time
    assert f"> 告警编号: {raised.alarm_id}" in content


async def test_wecom_text_mentions_and_bad_key_not_retried(http_capture: CaptureServer) -> None:
    http_capture.answers = [(200, {"errcode": 93000, "errmsg": "invalid webhook url"})]
    cfg = WeComNotifierConfig(kind="wecom", id="w", url=http_capture.url, key=SecretStr("K"), msgtype="text",
                              mentioned_mobiles=["13800001111"])
    notifier = WeComNotifier(cfg)
    record = AlarmRecord("01JN0000000000000000000000", "device.offline", AlarmState.RESOLVED, T0, "B1-HP-01",
                         actor="wang", note="更换通讯模块", id="01JN0000000000000000000001")
    with pytest.raises(NotifyError) as info:
        await notifier.send(Notification(record, "EST-1", "阳光花园", "GW-1", "1栋压力", "1栋", tz=CONTEXT.tz))
    await notifier.close()
    assert info.value.retry is False and "93000" in str(info.value)
    body = http_capture.requests[0].json()
    assert body["msgtype"] == "text" and body["text"]["mentioned_mobile_list"] == ["13800001111"]
    assert "处理人: wang" in body["text"]["content"] and "处置说明: 更换通讯模块" in body["text"]["content"]


async def test_dingtalk_signed_markdown_with_mentions(store: Store, clock: ManualClock,
                                                      http_capture: CaptureServer) -> None:
    cfg = DingTalkNotifierConfig(kind="dingtalk", id="manager-ding", url=http_capture.url,
                                 access_token=SecretStr("TOKEN"), sign_secret=SecretStr("SECabc"),
                                 at_mobiles=["13900002222"], min_escalation_level=2,
                                 steps=["escalated"])
    w = NotifierWorker(DingTalkNotifier(cfg), NotifyFilter.from_config(cfg), backoff_initial_s=0.01)
    config = AlarmsConfig(escalate_after_min=[15, 60])
    async with AlarmManager(store, clock=clock, config=config, context=CONTEXT, workers=[w]) as manager:
        await manager.apply([low_pressure()])
        clock.advance(16 * 60)
        await manager.check_escalations()  # level 1: not for this notifier
        clock.advance(45 * 60)
        await manager.check_escalations()  # level 2: the manager's robot
        await manager.drain()
    assert len(http_capture.requests) == 1
    req = http_capture.requests[0]
    ts = req.query["timestamp"][0]
    expected = base64.b64encode(hmac.new(b"SECabc", f"{ts}\nSECabc".encode(), hashlib.sha256).digest()).decode()
    assert req.query["access_token"] == ["TOKEN"] and req.query["sign"] == [expected]
    body = req.json()
    assert body["msgtype"] == "markdown" and body["at"] == {"atMobiles": ["13900002222"], "isAtAll": False}
    assert "告警升级(第2级)" in body["markdown"]["title"]
    # The alarm is named from the message catalogue, not by its code.
    assert "消火栓压力过低" in body["markdown"]["title"] and "fire.hydrant" not in body["markdown"]["title"]
    assert "已 61 分钟未确认" in body["markdown"]["text"] and "@13900002222" in body["markdown"]["text"]


async def test_mqtt_publishes_to_mosquitto(store: Store, clock: ManualClock, mosquitto: int) -> None:
    cfg = MqttNotifierConfig(kind="mqtt", id="bms", host="127.0.0.1", port=mosquitto)
    notifier = build_notifier(cfg, "GW-1")
    assert isinstance(notifier, MqttNotifier)
    w = worker(notifier)
    received: list[aiomqtt.Message] = []
    async with aiomqtt.Client("127.0.0.1", mosquitto, identifier="test-sub") as sub:
        await sub.subscribe("estate-edge/EST-1/alarms/#", qos=1)

        async def collect() -> None:
            async for message in sub.messages:
                received.append(message)

        collector = asyncio.create_task(collect())
        async with AlarmManager(store, clock=clock, context=CONTEXT, workers=[w]) as manager:
            (raised,) = await manager.apply([low_pressure()])
            await manager.acknowledge(raised.alarm_id, "wang", "马上到")
            await manager.drain()
            await eventually(lambda: len(received) == 2)
        collector.cancel()
    assert [str(m.topic) for m in received] == ["estate-edge/EST-1/alarms/fire.hydrant_pressure_low"] * 2
    bodies = [json.loads(m.payload) for m in received]
    assert [b["step"] for b in bodies] == ["raised", "acknowledged"]
    assert bodies[1]["alarm"]["actor"] == "wang" and bodies[1]["alarm"]["note"] == "马上到"


async def test_mqtt_broker_down_is_retried_then_given_up(store: Store, clock: ManualClock) -> None:
    cfg = MqttNotifierConfig(kind="mqtt", id="bms", host="127.0.0.1", port=_free_port(), timeout_s=1)
    w = worker(MqttNotifier(cfg, gateway_id="GW-1"))
    async with AlarmManager(store, clock=clock, context=CONTEXT, workers=[w]) as manager:
        await manager.apply([low_pressure()])
        await manager.drain()
    assert (w.stats.sent, w.stats.failed, w.stats.retries) == (0, 1, 2)
    assert "cannot connect" in (w.stats.last_error or "")


class Recorder:
    name = "recorder"

    def __init__(self, delay: float = 0.0) -> None:
        self.sent: list[Notification] = []
        self.delay = delay
        self.gate = asyncio.Event()
        self.gate.set()

    async def send(self, notification: Notification) -> None:
        await self.gate.wait()
        self.sent.append(notification)

    async def close(self) -> None:
        return None


async def test_filters_by_step_severity_and_code(store: Store, clock: ManualClock) -> None:
    fire_only = Recorder()
    majors = Recorder()
    workers = [
        NotifierWorker(fire_only, NotifyFilter(frozenset({"raised"}), Severity.INFO, codes=("fire.",))),
        NotifierWorker(majors, NotifyFilter(frozenset({"raised", "cleared"}), Severity.MAJOR)),
    ]
    async with AlarmManager(store, clock=clock, context=CONTEXT, workers=workers) as manager:
        await manager.apply([
            low_pressure(),
            AlarmTransition("device.offline", "B2-EM-01", TransitionKind.RAISE, T0, Severity.WARNING, "offline",
                            device_id="B2-EM-01"),
        ])
        await manager.apply([low_pressure(at=60, kind=TransitionKind.CLEAR)])
        await manager.drain()
    assert [(n.record.code, n.step) for n in fire_only.sent] == [("fire.hydrant_pressure_low", AlarmState.RAISED)]
    # The clear keeps the alarm's critical severity, so it passes the MAJOR filter.
    assert [(n.record.code, n.step) for n in majors.sent] == [
        ("fire.hydrant_pressure_low", AlarmState.RAISED), ("fire.hydrant_pressure_low", AlarmState.CLEARED)]


async def test_full_queue_drops_oldest_and_apply_never_waits(store: Store, clock: ManualClock) -> None:
    slow = Recorder()
    slow.gate.clear()  # the notifier hangs
    w = NotifierWorker(slow, NotifyFilter(frozenset({"raised"}), Severity.INFO), queue_max=3)
    async with AlarmManager(store, clock=clock, context=CONTEXT, workers=[w]) as manager:
        transitions = [AlarmTransition("device.offline", f"D{i}", TransitionKind.RAISE, T0, Severity.WARNING,
                                       "offline", device_id=f"D{i}") for i in range(6)]
        await asyncio.wait_for(manager.apply(transitions), 2)  # returns although nothing is delivered
        await asyncio.sleep(0.05)
        slow.gate.set()
        await manager.drain()
    # All six were offered at once; only the newest three fitted.
    assert [n.record.device_id for n in slow.sent] == ["D3", "D4", "D5"]
    assert w.stats.dropped == 3


def test_rate_limiter_window() -> None:
    now = [0.0]
    limiter = RateLimiter(2, monotonic=lambda: now[0])
    assert limiter.delay() == 0
    limiter.record()
    now[0] = 10
    limiter.record()
    assert limiter.delay() == pytest.approx(50)
    now[0] = 60
    assert limiter.delay() == 0


def test_config_rejects_bad_escalation_and_duplicate_notifiers() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        AlarmsConfig(escalate_after_min=[30, 15])
    with pytest.raises(ValueError, match="used more than once"):
        AlarmsConfig.model_validate({"notifiers": [
            {"kind": "mqtt", "id": "x", "host": "h"}, {"kind": "wecom", "id": "x", "key": "k"}]})


def estate_config(device_name: str, alarms: dict) -> EstateConfig:
    return EstateConfig.model_validate({
        "estate": {"id": "EST-1", "name": "阳光花园", "gateway_id": "GW-1"},
        "platform": {"url": "https://platform.example", "client_id": "c"},
        "buses": [{"kind": "synthetic", "id": "b"}],
        "devices": [{"id": "B1-HP-01", "name": device_name, "bus": "b", "category": "fire_pressure",
                     "location": {"building": "1栋"}}],
        "alarms": alarms,
    })


async def test_reload_replaces_notifiers_and_device_names_keeping_open_alarms(
    store: Store, clock: ManualClock, http_capture: CaptureServer
) -> None:
    before = estate_config("old name", {"escalate_after_min": []})
    after = estate_config("1栋消火栓压力", {
        "escalate_after_min": [15], "check_interval_s": 1,
        "notifiers": [{"kind": "webhook", "id": "ops", "url": http_capture.url}],
    })
    async with AlarmManager.from_config(store, before, clock=clock) as manager:
        (first,) = await manager.apply([low_pressure()])
        changed = await manager.reconfigure(after)
        assert await manager.apply([low_pressure(at=5)]) == []  # still open: a duplicate, not a second alarm
        clock.advance(16 * 60)
        (escalated,) = await manager.check_escalations()  # the new escalation step applies to the open alarm
        await manager.drain()
        assert manager._escalation_task is not None  # the loop was started by the reload
        unchanged = await manager.reconfigure(after)
    assert changed == ["notifiers", "escalation"] and unchanged == []
    assert escalated.alarm_id == first.alarm_id and escalated.state is AlarmState.ESCALATED
    body = http_capture.requests[-1].json()
    assert body["step"] == "escalated" and body["device"]["name"] == "1栋消火栓压力"
