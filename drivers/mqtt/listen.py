"""The installer's "listen" tool: what arrives on a topic filter of a configured broker, for a bounded while.

Why a client of its own: the running source's session must not change (its subscriptions, its
persistent queue, its acknowledgements); a second connection with the same client id would make
the broker drop the source's. The listener connects with a clean session and a random client id
suffix, subscribes at QoS 0 (nothing is queued for it once it leaves), and stops at the first of
``max_messages`` messages or ``seconds``.

Memory is bounded whatever the topic carries: paho's callback keeps only the first
``PREVIEW_BYTES`` of each payload and at most ``max_messages`` messages (``MAX_MESSAGES`` at most),
and the payloads never reach aiomqtt's queue. Retained messages arrive at once and are marked.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import cast

import aiomqtt
import paho.mqtt.client as paho

from drivers.mqtt.transport import BrokerSettings, tls_context
from edge.bus_tools import HeardMessage, ListenResult
from edge.clock import Clock, SystemClock, to_us
from edge.config.buses import MqttBusConfig

PREVIEW_BYTES = 256
MAX_MESSAGES = 200
MAX_SECONDS = 60.0
MAX_FILTER_BYTES = 1024


class TopicFilterError(ValueError):
    """A topic filter MQTT 3.1.1 section 4.7 refuses; the message says which rule."""


def check_filter(topic_filter: str) -> str:
    """``topic_filter`` if it is a valid MQTT subscription filter, else ``TopicFilterError``."""
    if not topic_filter:
        raise TopicFilterError("a topic filter cannot be empty")
    if len(topic_filter.encode("utf-8")) > MAX_FILTER_BYTES:
        raise TopicFilterError(f"a topic filter is at most {MAX_FILTER_BYTES} bytes here")
    if "\x00" in topic_filter:
        raise TopicFilterError("a topic filter cannot contain NUL")
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise TopicFilterError("'#' must be a whole level and the last one")
        if "+" in level and level != "+":
            raise TopicFilterError("'+' must be a whole level")
    return topic_filter


def preview(payload: bytes) -> str:
    """The payload's first bytes as text, or as hex when they are not UTF-8 (a cut multi-byte character is dropped)."""
    head = payload[:PREVIEW_BYTES]
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3 and len(payload) > PREVIEW_BYTES:  # only the cut at the end is broken
            try:
                return head[:exc.start].decode("utf-8")
            except UnicodeDecodeError:
                pass
        return "hex:" + head.hex()


async def listen(bus: MqttBusConfig, topic_filter: str, *, seconds: float, max_messages: int,
                 clock: Clock | None = None) -> ListenResult:
    """Listen on ``topic_filter`` for up to ``seconds`` or ``max_messages``; a failure is a result, not an exception."""
    clock = clock or SystemClock()
    started = time.perf_counter()
    seconds = max(0.1, min(MAX_SECONDS, seconds))
    max_messages = max(1, min(MAX_MESSAGES, max_messages))
    try:
        check_filter(topic_filter)
    except TopicFilterError as exc:
        return ListenResult(bus.id, topic_filter, error="bad_filter", detail=str(exc))
    heard: list[HeardMessage] = []
    enough = asyncio.Event()

    def on_message(_client: paho.Client, _userdata: object, message: paho.MQTTMessage) -> None:
        if len(heard) >= max_messages:
            return
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = "hex:" + message._topic.hex()  # paho keeps the raw topic only there
        # paho types payload bytes | bytearray (shared with outgoing messages); a received one is bytes
        payload = cast(bytes, message.payload)
        heard.append(HeardMessage(topic, to_us(clock.now()), len(payload), preview(payload), message.qos,
                                  bool(message.retain)))
        if len(heard) >= max_messages:
            enough.set()

    prefix = bus.client_id or f"estate-edge-{bus.id}"
    client = aiomqtt.Client(
        bus.host, bus.port, identifier=f"{prefix}-listen-{secrets.token_hex(3)}", username=bus.username,
        password=bus.password.get_secret_value() if bus.password else None, clean_session=True,
        timeout=min(seconds, bus.connect_timeout_s), keepalive=max(5, int(seconds) + 5),
        tls_context=tls_context(_settings(bus)),
    )
    client._client.on_message = on_message  # payloads never reach aiomqtt's unbounded queue
    stopped_by = "time"
    try:
        async with client:
            await client.subscribe(topic_filter, qos=0)
            try:
                async with asyncio.timeout(max(0.0, seconds - (time.perf_counter() - started))):
                    await enough.wait()
                stopped_by = "count"
            except TimeoutError:
                stopped_by = "time"
    except aiomqtt.MqttError as exc:
        return ListenResult(bus.id, topic_filter, tuple(heard), "error", _ms(started), "unreachable",
                            f"broker {bus.host}:{bus.port}: {exc}")
    except (OSError, ValueError) as exc:
        return ListenResult(bus.id, topic_filter, tuple(heard), "error", _ms(started), "unreachable",
                            f"broker {bus.host}:{bus.port}: {type(exc).__name__}: {exc}")
    return ListenResult(bus.id, topic_filter, tuple(heard), stopped_by, _ms(started))


def _settings(bus: MqttBusConfig) -> BrokerSettings:
    return BrokerSettings(host=bus.host, port=bus.port, client_id="", tls=bus.tls, ca_file=bus.ca_file,
                          cert_file=bus.cert_file, key_file=bus.key_file)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
