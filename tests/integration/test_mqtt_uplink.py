"""The MQTT uplink transport under the real ``Uplink``, a real store and a real Mosquitto (started by the test).

A consumer subscribed on the broker receives every committed record, deduplicated by record id; a
broker that accepts the connection but stops acknowledging (SIGSTOP: the socket stays open, no
PUBACK comes) never advances the lane's cursor, and the batch arrives once the broker answers again.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.records import Event, Lane, Reading
from edge.store import Store
from edge.uplink import Uplink, UplinkSettings
from edge.uplink.mqtt_transport import MqttPlatformClient, MqttUplinkSettings
from simulators.mqtt.broker import MosquittoBroker
from tests.helpers.sql import sql_rows
from tests.helpers.waiting import eventually


class Consumer:
    """A platform-side subscriber (MQTT v5, to see user properties) that keeps every message."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="platform-consumer", protocol=paho.MQTTv5)
        ready = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(10), "consumer did not subscribe"

    def _on_message(self, _c: object, _u: object, message: paho.MQTTMessage) -> None:
        payload = message.payload
        if payload[:2] == b"\x1f\x8b":
            payload = gzip.decompress(payload)
        props = dict(getattr(message.properties, "UserProperty", []) or [])
        with self.lock:
            self.messages.append((message.topic, json.loads(payload), props))

    def ids(self) -> list[str]:
        with self.lock:
            return [r["id"] for _, body, _ in self.messages for r in body["records"]]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()




def readings(n: int, start: int = 0) -> list[Reading]:
    now = datetime.now(UTC)
    return [Reading(f"m{i % 7}", "energy_import", float(i), "kWh", now) for i in range(start, start + n)]


async def test_every_committed_record_reaches_the_consumer_over_tls(mqtt_broker: MosquittoBroker, tmp_path: Path) -> None:
    tls = mqtt_broker.tls
    assert tls is not None and mqtt_broker.tls_port is not None
    consumer = Consumer(mqtt_broker.port, "estate-edge/e1/gw1/#")
    client = MqttPlatformClient(MqttUplinkSettings("127.0.0.1", mqtt_broker.tls_port, ca_file=tls.ca,
                                                   cert_file=tls.client_cert, key_file=tls.client_key, gzip=True),
                                estate_id="e1", gateway_id="gw1")
    try:
        async with Store(tmp_path / "edge.db", batch_max_delay_ms=1) as store:
            await store.append_readings(readings(230))
            await store.append_events([Event("door.open", datetime.now(UTC), "d1", message="泵房门打开")])
            reading_ids = {r[0] for r in await sql_rows(store, "SELECT id FROM readings")}
            committed = reading_ids | {r[0] for r in await sql_rows(store, "SELECT id FROM events")}
            async with Uplink(store, client, UplinkSettings(batch_size=100, concurrency=2, idle_poll_s=0.05)) as uplink:
                await eventually(lambda: set(consumer.ids()) == committed, what="every record at the consumer")
                await eventually(lambda: uplink.lanes[Lane.TELEMETRY].acked == max(reading_ids), what="telemetry cursor")
            assert await store.cursor(Lane.TELEMETRY) == max(reading_ids)
    finally:
        consumer.stop()
        await client.aclose()
    topics = {t for t, _, _ in consumer.messages}
    assert topics == {"estate-edge/e1/gw1/telemetry", "estate-edge/e1/gw1/event"}
    # The event went first (lane priority) and every message is one batch with the HTTPS envelope.
    assert consumer.messages[0][0].endswith("/event")
    body = consumer.messages[1][1]
    assert set(body) == {"contract_version", "gateway_id", "estate_id", "kind", "sent_at", "records"}
    assert body["estate_id"] == "e1" and body["contract_version"] == 3
    assert all(len(b["records"]) <= 100 for _, b, _ in consumer.messages)
    assert all(p.get("idempotency-key", "").startswith(b["kind"]) for _, b, p in consumer.messages)


async def test_a_broker_that_stops_acknowledging_never_advances_the_cursor(
        mqtt_broker: MosquittoBroker, tmp_path: Path) -> None:
    consumer = Consumer(mqtt_broker.port, "estate-edge/e1/gw1/#")
    client = MqttPlatformClient(MqttUplinkSettings("127.0.0.1", mqtt_broker.port, tls=False, ack_timeout_s=0.5,
                                                   connect_timeout_s=0.5),
                                estate_id="e1", gateway_id="gw1")
    pid = mqtt_broker._proc.pid if mqtt_broker._proc else 0
    try:
        async with Store(tmp_path / "edge.db", batch_max_delay_ms=1) as store:
            settings = UplinkSettings(batch_size=50, concurrency=1, idle_poll_s=0.05, backoff_initial_s=0.1,
                                      backoff_max_s=0.3, breaker_failures=100)
            async with Uplink(store, client, settings) as uplink:
                first_ids = await store.append_readings(readings(50))
                uplink.wake()
                await eventually(lambda: len(consumer.ids()) == 50, what="the first batch")
                # The consumer can have the batch before the gateway has the broker's PUBACK: wait for the ack
                # of all 50 (the newest poll may follow its batch a second later: it waits until it cannot grow).
                await eventually(lambda: uplink.lanes[Lane.TELEMETRY].acked == max(first_ids), what="the first acks")
                first_cursor = await store.cursor(Lane.TELEMETRY)
                assert first_cursor == uplink.lanes[Lane.TELEMETRY].acked  # acked means stored
                os.kill(pid, signal.SIGSTOP)  # connection open, nothing answered
                try:
                    await store.append_readings(readings(50, start=50))
                    uplink.wake()
                    await eventually(lambda: client.error_codes.get("NO_PUBACK", 0) + client.error_codes.get("MQTT", 0)
                                     + client.error_codes.get("CONNECT", 0) >= 2, what="unacknowledged sends")
                    assert await store.cursor(Lane.TELEMETRY) == first_cursor
                    assert uplink.lanes[Lane.TELEMETRY].acked == first_cursor
                finally:
                    os.kill(pid, signal.SIGCONT)
                await eventually(lambda: len(set(consumer.ids())) == 100, what="the held batch after the broker answered")
                newest = max(r[0] for r in await sql_rows(store, "SELECT id FROM readings"))
                await eventually(lambda: uplink.lanes[Lane.TELEMETRY].acked == newest, what="the cursor after the ack")
                assert await store.cursor(Lane.TELEMETRY) == newest > first_cursor
    finally:
        consumer.stop()
        await client.aclose()
    # Repeats (the unacknowledged publishes the broker later processed) carry the same record ids.
    assert len(consumer.ids()) >= 100 and len(set(consumer.ids())) == 100


async def test_username_and_password_and_a_refused_login(mqtt_broker: MosquittoBroker, tmp_path: Path) -> None:
    from edge.errors import UplinkUnavailable

    assert mqtt_broker.auth_port is not None
    consumer = Consumer(mqtt_broker.port, "estate-edge/e1/gw1/#")
    good = MqttPlatformClient(MqttUplinkSettings("127.0.0.1", mqtt_broker.auth_port, tls=False, username="gateway",
                                                 password="s3cret-pass"), estate_id="e1", gateway_id="gw1")
    bad = MqttPlatformClient(MqttUplinkSettings("127.0.0.1", mqtt_broker.auth_port, tls=False, username="gateway",
                                                password="nope", connect_timeout_s=2), estate_id="e1", gateway_id="gw1")
    try:
        ack = await good.send("event", [{"id": "01TESTEVENT0000000000000001", "code": "x"}])
        assert ack.accepted == 1
        await eventually(lambda: consumer.ids() == ["01TESTEVENT0000000000000001"], what="the authenticated batch")
        try:
            await bad.send("event", [{"id": "01TESTEVENT0000000000000002", "code": "x"}])
        except UplinkUnavailable as exc:
            assert exc.code == "CONNECT"
        else:
            raise AssertionError("a refused login must not count as delivered")
    finally:
        consumer.stop()
        await good.aclose()
        await bad.aclose()
    assert "01TESTEVENT0000000000000002" not in consumer.ids()


async def test_an_estate_that_chooses_mqtt_uploads_through_the_broker(mqtt_broker: MosquittoBroker,
                                                                       tmp_path: Path) -> None:
    """``platform.transport: mqtt`` in the estate config: the same Uplink, lanes and acks, over the broker (TLS,
    client certificate); the durable cursor reaches the newest record once the broker acknowledged it."""
    from edge.config import load_config
    from tests.helpers.config import write_estate

    tls = mqtt_broker.tls
    assert tls is not None and mqtt_broker.tls_port is not None
    config_path, secrets = write_estate(tmp_path, platform_url="https://platform.example", ca=None, extra={
        "platform": {"transport": "mqtt", "batch_size": 100,
                     "mqtt": {"host": "127.0.0.1", "port": mqtt_broker.tls_port, "ca_file": str(tls.ca),
                              "cert_file": str(tls.client_cert), "key_file": str(tls.client_key),
                              "topic_prefix": "city"}}})
    config = load_config(config_path, secrets)
    consumer = Consumer(mqtt_broker.port, f"city/{config.estate.id}/{config.estate.gateway_id}/#")
    try:
        async with Store(tmp_path / "edge.db", batch_max_delay_ms=1) as store:
            await store.append_readings(readings(250))
            ids = {r[0] for r in await sql_rows(store, "SELECT id FROM readings")}
            async with Uplink.from_config(store, config) as uplink:
                await eventually(lambda: set(consumer.ids()) == ids, what="every record at the consumer")
                await eventually(lambda: uplink.lanes[Lane.TELEMETRY].acked == max(ids), what="the broker's PUBACKs")
            assert uplink.client.error_codes == {}
            assert await store.cursor(Lane.TELEMETRY) == max(ids)
    finally:
        consumer.stop()
    assert {b["estate_id"] for _, b, _ in consumer.messages} == {config.estate.id}


def test_mqtt_without_tls_is_refused_outside_lab_mode(tmp_path: Path) -> None:
    import pytest

    from edge.config import load_config
    from edge.errors import ConfigError
    from tests.helpers.config import write_estate

    broker = {"host": "127.0.0.1", "port": 1883, "tls": False}
    path, secrets = write_estate(tmp_path, platform_url="https://platform.example", ca=None,
                                 extra={"platform": {"transport": "mqtt", "mqtt": broker}})
    with pytest.raises(ConfigError) as refused:
        load_config(path, secrets)
    assert "clear text" in "\n".join(refused.value.problems)
    path, secrets = write_estate(tmp_path, platform_url="https://platform.example", ca=None,
                                 extra={"platform": {"transport": "mqtt"}})
    with pytest.raises(ConfigError) as refused:
        load_config(path, secrets)
    assert "needs the broker" in "\n".join(refused.value.problems)
