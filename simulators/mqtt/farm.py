"""The MQTT device farm: simulated devices publishing through a real broker with paho-mqtt.

One shared connection publishes every device's reports (QoS 1, as NB-IoT platforms forward).
``DeviceLink`` is one device's own connection with a last will on ``<base>/status``: ``online``
publishes "online" (retained) and ``drop`` cuts the TCP connection without DISCONNECT, so the
broker publishes the will "offline", exactly what a device that lost power looks like.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterable
from datetime import UTC, datetime

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from simulators.mqtt.devices import SimDevice, reports


def _connect(client: paho.Client, host: str, port: int, timeout: float = 10.0) -> None:
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    client.connect(host, port, keepalive=30)
    client.loop_start()
    if not connected.wait(timeout):
        client.loop_stop()
        raise ConnectionError(f"no CONNACK from {host}:{port}")


class MqttDeviceFarm:
    """Publishes reports of many simulated devices over one connection."""

    def __init__(self, host: str, port: int, devices: Iterable[SimDevice] = (), *, client_id: str = "sim-farm",
                 seed: int = 0) -> None:
        self.host, self.port = host, port
        self.devices = {d.id: d for d in devices}
        self.rng = random.Random(seed)
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(1000)
        self.published = 0

    def start(self) -> MqttDeviceFarm:
        _connect(self.client, self.host, self.port)
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> MqttDeviceFarm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                wait: bool = True) -> paho.MQTTMessageInfo:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        self.published += 1
        if wait:
            info.wait_for_publish(10)
        return info

    def report(self, device_id: str, ts: datetime | None = None) -> int:
        """Publish one report cycle of a device; returns the number of messages."""
        messages = reports(self.devices[device_id], ts)
        infos = [self.publish(t, p, wait=False) for t, p in messages]
        for info in infos:
            info.wait_for_publish(10)
        return len(messages)

    def drift(self) -> None:
        """Move every device's state a little (battery drains, lifts travel), for long demo runs."""
        for dev in self.devices.values():
            dev.battery = max(5.0, dev.battery - self.rng.random() * 0.01)
            dev.rsrp = max(-120, min(-70, dev.rsrp + self.rng.choice((-1, 0, 1))))
            if dev.kind == "lift":
                dev.running = self.rng.random() < 0.5
                dev.floor = max(1, min(33, dev.floor + (self.rng.choice((-1, 1)) if dev.running else 0)))
                dev.load_pct = round(self.rng.uniform(0, 80) if dev.running else 0.0, 1)
                dev.motor_current_ma = round(self.rng.uniform(8000, 16000) if dev.running else 300.0, 0)

    def run_cycle(self) -> int:
        self.drift()
        now = datetime.now(UTC)
        return sum(self.report(device_id, now) for device_id in self.devices)


class DeviceLink:
    """One device's own connection, with a last will "offline" on ``<base>/status`` (retained)."""

    def __init__(self, host: str, port: int, base_topic: str, *, client_id: str | None = None) -> None:
        self.host, self.port, self.status_topic = host, port, f"{base_topic}/status"
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"sim-{base_topic.replace('/', '-')}")
        self.client.will_set(self.status_topic, b"offline", qos=1, retain=True)

    def online(self) -> None:
        _connect(self.client, self.host, self.port)
        self.client.publish(self.status_topic, b"online", qos=1, retain=True).wait_for_publish(10)

    def drop(self) -> None:
        """Cut the connection as a power loss would: no DISCONNECT, so the broker sends the will."""
        self.client.loop_stop()
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()
