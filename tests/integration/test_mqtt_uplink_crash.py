"""The spine's crash test over the MQTT uplink: SIGKILL the uploader and restart the broker at random moments.

Every record the store acknowledged reaches a consumer subscribed on the broker (exactly once after
deduplication by record id), and the consumer never sees a record the store had not committed.
The uploader is the real ``Store`` + ``Uplink`` + ``MqttPlatformClient`` in a child process (this
module run with ``--child``); the broker is a real Mosquitto restarted with SIGTERM (it keeps its
sessions and queued messages, as a broker cluster would across a node restart).

    python -m tests.integration.test_mqtt_uplink_crash --child DB PORT [--drain]
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators.mqtt.broker import MosquittoBroker
from tests.helpers.sql import sql_one

REPO = Path(__file__).resolve().parents[2]
BATCH = 100


async def child(db: Path, port: int, drain: bool) -> None:
    from edge.records import Reading
    from edge.store import Store
    from edge.uplink import Uplink, UplinkSettings
    from edge.uplink.mqtt_transport import MqttPlatformClient, MqttUplinkSettings

    client = MqttPlatformClient(MqttUplinkSettings("127.0.0.1", port, tls=False, ack_timeout_s=1.0, connect_timeout_s=1.0),
                                estate_id="e1", gateway_id="gw1")
    settings = UplinkSettings(batch_size=BATCH, concurrency=2, idle_poll_s=0.05, backoff_initial_s=0.05,
                              backoff_max_s=0.5, breaker_failures=1000)
    async with Store(db, batch_max_delay_ms=2) as store:
        row = await sql_one(store, "SELECT max(value) FROM readings WHERE device_id='crash'")
        seq = int(row[0]) if row and row[0] is not None else 0
        async with Uplink(store, client, settings) as uplink:
            if drain:
                while not await uplink.drained():
                    await asyncio.sleep(0.05)
                print("DRAINED", flush=True)
                return
            while True:
                now = datetime.now(UTC)
                await store.append_readings([Reading("crash", "seq", float(seq + i + 1), "1", now) for i in range(BATCH)])
                print(f"ACK {seq + 1} {seq + BATCH}", flush=True)
                seq += BATCH
                uplink.wake()
                await asyncio.sleep(0.005)


class Consumer:
    """The platform side: a persistent QoS 1 session that keeps (id, values) of every record it receives.

    Contract v3: a telemetry record is one poll (here one ingested batch: one device, one instant) whose
    points carry the sequence numbers; its id is the id of its first reading.
    """

    def __init__(self, port: int) -> None:
        self.records: list[tuple[str, tuple[int, ...]]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="crash-consumer", clean_session=False)
        self.client.reconnect_delay_set(0.05, 0.5)
        self.client.on_connect = lambda c, *_: c.subscribe("estate-edge/e1/gw1/#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, message: paho.MQTTMessage) -> None:
        body = json.loads(message.payload)
        with self.lock:
            self.records.extend((r["id"], tuple(int(p["value"]) for p in r["points"])) for r in body["records"]
                                if r.get("device_id") == "crash")

    def snapshot(self) -> list[tuple[str, tuple[int, ...]]]:
        with self.lock:
            return list(self.records)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.slow
def test_sigkill_and_broker_restarts_lose_and_invent_nothing(mqtt_broker: MosquittoBroker, tmp_path: Path) -> None:
    rng = random.Random(20261127)
    db = tmp_path / "edge.db"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "tests.integration.test_mqtt_uplink_crash", "--child", str(db), str(mqtt_broker.port)]
    consumer = Consumer(mqtt_broker.port)
    acked: set[int] = set()
    restarts = 0
    try:
        for _round in range(10):
            proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            time.sleep(rng.uniform(0.5, 1.2))
            if rng.random() < 0.5:
                mqtt_broker.restart()  # SIGTERM + start: sessions and queued messages kept
                restarts += 1
                time.sleep(rng.uniform(0.0, 0.6))
            proc.kill()  # SIGKILL: no cleanup, no flush, no goodbye
            out, _ = proc.communicate(timeout=10)
            for line in out.splitlines():
                if line.startswith("ACK "):
                    first, last = map(int, line.split()[1:])
                    acked.update(range(first, last + 1))
        assert len(acked) > 1000, "the uploader never got going"
        assert restarts >= 2
        drain = subprocess.run([*command, "--drain"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert "DRAINED" in drain.stdout, drain.stderr[-2000:]
        deadline = time.monotonic() + 20
        while not acked <= {v for _, values in consumer.snapshot() for v in values} and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        consumer.stop()
    received = consumer.snapshot()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = dict(conn.execute("SELECT id, CAST(min(value) AS INTEGER) FROM readings WHERE device_id='crash'"
                                   " GROUP BY id").fetchall())
    unique = dict(received)
    # A record sent again (after a kill between PUBACK and cursor) holds exactly the same readings: it is
    # the same stored poll, so deduplicating by record id is right.
    assert all(unique[record_id] == values for record_id, values in received)
    # Never a record the store had not committed: every id the consumer saw is a stored poll, and its first
    # value is the poll's first (lowest) sequence number.
    assert all(stored.get(record_id) == values[0] for record_id, values in unique.items())
    # Exactly once after deduplication by id: each sequence number in one record only.
    numbers = [v for values in unique.values() for v in values]
    assert len(numbers) == len(set(numbers))
    missing = acked - set(numbers)
    assert not missing, f"{len(missing)} acknowledged records never reached the consumer, e.g. {sorted(missing)[:5]}"
    assert len(received) >= len(unique)  # repeats happen (kills between PUBACK and cursor) and are dropped by id


if __name__ == "__main__" and "--child" in sys.argv:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    asyncio.run(child(Path(args[0]), int(args[1]), "--drain" in sys.argv))
