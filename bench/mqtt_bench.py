"""MQTT device ingest through a real Mosquitto, every message committed to the store, next to a raw paho subscriber.

    python bench/mqtt_bench.py [--messages 100000] [--devices 1000]

Both sides drain the same backlog from the same broker in the same run: each first opens its
persistent session (QoS 1 subscriptions, then disconnects), a paho publisher fills the sessions
with ``--messages`` NB-IoT smoke-detector JSON reports (five points each) from ``--devices``
devices, then each side reconnects and is timed from connection to its last message. The raw side
is a bare paho subscriber that only counts (its acks go out as paho receives). Ours is the
``MqttSource`` decoding every payload through its profile, committing the readings through the
pipeline into a real SQLite store, and acknowledging each message only after its commit.
The broker's in-flight window (``max_inflight_messages``, ``--inflight``, default 1000) is the same for both.

Prints ``BENCH mqtt_ingest_msgs_per_s <n> msgs/s baseline=<raw> target=10000`` and the ratio.

Then the MQTT uplink: ``--records`` readings committed to a store are drained by the real
``Uplink`` over ``MqttPlatformClient`` (batches of 1000, 4 in flight, QoS 1, each batch acknowledged
by the broker before the lane's cursor moves) to the same Mosquitto, with a consumer subscribed;
timed from start to the durable cursor reaching the newest record. Prints
``BENCH mqtt_uplink_records_per_s <n> records/s target=20000``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from drivers.mqtt.driver import MqttSource
from edge.config.buses import MqttBusConfig
from edge.config.devices import DeviceConfig
from edge.pipeline import Pipeline
from edge.store import Store
from simulators.mqtt.broker import MosquittoBroker
from simulators.mqtt.devices import SimDevice, smoke_up
from tests.helpers.sql import sql_rows

PREFIX = "bench/smoke"


def topics(devices: int) -> list[str]:
    return [f"{PREFIX}/{i}/up" for i in range(devices)]


def open_session(port: int, client_id: str, filters: list[str]) -> None:
    """Create a persistent session with QoS 1 subscriptions, then leave (the broker queues for it)."""
    done = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_connect = lambda c, *_: c.subscribe([(f, 1) for f in filters])
    client.on_subscribe = lambda *_: done.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    done.wait(30)
    client.disconnect()
    client.loop_stop()


def publish_backlog(port: int, messages: int, devices: int) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    now = datetime.now(UTC)
    sims = [SimDevice(str(i), "smoke", f"{PREFIX}/{i}") for i in range(devices)]
    infos: deque[paho.MQTTMessageInfo] = deque()
    for n in range(messages):
        sim = sims[n % devices]
        sim.battery = float(n % 100)
        topic, payload = smoke_up(sim, now)
        infos.append(client.publish(topic, payload, qos=1))
        if len(infos) > 20_000:  # message ids are 16 bits: keep well under 65,535 unacknowledged
            infos.popleft().wait_for_publish(60)
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def raw_subscriber(port: int, messages: int) -> float:
    got = 0
    done = threading.Event()
    started = 0.0

    def on_connect(*_: object) -> None:
        nonlocal started
        started = time.perf_counter()

    def on_message(*_: object) -> None:
        nonlocal got
        got += 1
        if got == messages:
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw", clean_session=False)
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not done.wait(300):
        raise RuntimeError(f"raw subscriber got {got} of {messages}")
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return messages / elapsed


async def our_source(port: int, messages: int, devices: int, db: Path) -> tuple[float, int]:
    bus = MqttBusConfig(kind="mqtt", id="bench", host="127.0.0.1", port=port)
    configs = [DeviceConfig.model_validate({
        "id": f"smoke-{i}", "name": f"smoke {i}", "bus": "bench", "profile": "nbiot_smoke_detector",
        "category": "other", "location": {"building": "1栋"}, "options": {"topic": f"{PREFIX}/{i}"},
    }) for i in range(devices)]
    source = MqttSource(bus, configs, client_id="bench-ours")
    async with Store(db, batch_max_records=20_000, batch_max_delay_ms=5, maintenance_interval_s=0) as store:
        sink = Pipeline(store)
        task = asyncio.create_task(source.run(sink))
        await source.session.wait_connected()
        started = time.perf_counter()
        while source.committed_readings < 5 * messages:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        stored = await store.count("readings")
    if source.parking.total:
        raise RuntimeError(f"{source.parking.total} bench payloads were parked: {source.parking.as_dict()['recent'][:1]}")
    return messages / elapsed, stored


async def uplink_drain(port: int, records: int, db: Path) -> float:
    from edge.records import Lane, Reading
    from edge.uplink import Uplink, UplinkSettings
    from edge.uplink.mqtt_transport import MqttPlatformClient, MqttUplinkSettings

    now = datetime.now(UTC)
    async with Store(db, batch_max_records=20_000, batch_max_delay_ms=5, maintenance_interval_s=0) as store:
        for start in range(0, records, 10_000):
            await store.append_readings([Reading(f"m{i % 500}", "energy_import", float(i), "kWh", now)
                                         for i in range(start, min(records, start + 10_000))])
        newest = (await sql_rows(store, "SELECT max(id) FROM readings"))[0][0]
        client = MqttPlatformClient(MqttUplinkSettings("127.0.0.1", port, tls=False), estate_id="bench", gateway_id="gw")
        settings = UplinkSettings(batch_size=1000, concurrency=4, idle_poll_s=0.05)
        started = time.perf_counter()
        async with Uplink(store, client, settings):
            while await store.cursor(Lane.TELEMETRY) != newest:  # the durable cursor, not the in-memory one
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
        await client.aclose()
    return records / elapsed


def count_consumer(port: int, topic: str) -> tuple[paho.Client, list[int]]:
    """A platform-side subscriber that counts records (proves the batches reached someone)."""
    import json

    seen = [0]
    ready = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-consumer")
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *_: ready.set()

    def on_message(_c: object, _u: object, message: paho.MQTTMessage) -> None:
        seen[0] += len(json.loads(message.payload)["records"])

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.wait(10)
    return client, seen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--inflight", type=int, default=1000, help="the broker's max_inflight_messages")
    parser.add_argument("--records", type=int, default=200_000, help="records for the uplink part (0: skip it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, MosquittoBroker(Path(tmp) / "broker", max_inflight=args.inflight,
                                                               persistence=False) as broker:
        filters = topics(args.devices)
        open_session(broker.port, "bench-raw", filters)
        source_filters = [f"{PREFIX}/{i}/{m}" for i in range(args.devices) for m in ("up", "raw", "status")]
        open_session(broker.port, "bench-ours", source_filters)
        publish_backlog(broker.port, args.messages, args.devices)
        baseline = raw_subscriber(broker.port, args.messages)
        ours, stored = asyncio.run(our_source(broker.port, args.messages, args.devices, Path(tmp) / "edge.db"))
        assert stored == 5 * args.messages, (stored, 5 * args.messages)
        print(f"BENCH mqtt_ingest_msgs_per_s {ours:.0f} msgs/s baseline={baseline:.0f} target=10000")
        print(f"BENCH mqtt_ingest_vs_raw_pct {100 * ours / baseline:.1f} % target=50")
        if args.records:
            consumer, seen = count_consumer(broker.port, "estate-edge/bench/gw/#")
            uplink = asyncio.run(uplink_drain(broker.port, args.records, Path(tmp) / "uplink.db"))
            deadline = time.monotonic() + 30
            while seen[0] < args.records and time.monotonic() < deadline:
                time.sleep(0.05)
            consumer.disconnect()
            consumer.loop_stop()
            print(f"BENCH mqtt_uplink_records_per_s {uplink:.0f} records/s target=20000 consumer_received={seen[0]}")


if __name__ == "__main__":
    main()
