"""The MQTT source's batched socket reads (``drivers.mqtt.transport.BatchedReader``) against a real Mosquitto.

A backlog queued in the source's persistent session arrives as a stream of packets packed into
64 KiB reads: small reports many to a read, 150 kB payloads (parked as too large, still
acknowledged) across several reads, packets cut at a read's end. Every message must be handed
over exactly once and acknowledged: reconnecting with the same session, only a new marker arrives,
nothing of the backlog again. Over TLS too, where the TLS object can hold decrypted bytes the
socket no longer signals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest

from drivers.mqtt.driver import MqttSource
from edge.config.buses import MqttBusConfig
from edge.config.devices import DeviceConfig
from simulators.mqtt.broker import MosquittoBroker
from simulators.mqtt.devices import SimDevice, smoke_up
from simulators.mqtt.farm import MqttDeviceFarm
from tests.helpers.sink import RecordingSink
from tests.helpers.waiting import eventually

DEVICES = 20
REPORTS = 1500
BIG = 8


def bus(broker: MosquittoBroker, tls: bool) -> MqttBusConfig:
    extra: dict[str, Any] = {}
    if tls:
        assert broker.tls is not None
        extra = {"port": broker.tls_port, "tls": True, "ca_file": broker.tls.ca, "cert_file": broker.tls.client_cert,
                 "key_file": broker.tls.client_key}
    return MqttBusConfig.model_validate({"kind": "mqtt", "id": "mq", "host": "127.0.0.1", "port": broker.port,
                                         "backoff_initial_s": 0.05, "backoff_max_s": 0.2,
                                         "max_payload_bytes": 65_536, **extra})


def devices() -> list[DeviceConfig]:
    return [DeviceConfig.model_validate({
        "id": f"smoke-{i}", "name": f"smoke {i}", "bus": "mq", "profile": "nbiot_smoke_detector", "category": "other",
        "location": {"building": "1栋"}, "options": {"topic": f"batch/smoke/{i}"}}) for i in range(DEVICES)]



eventually = partial(eventually, timeout=30.0)  # ingest of a large backlog takes longer


async def run_until(source: MqttSource, sink: RecordingSink, check: Callable[[], bool], what: str) -> None:
    task = asyncio.create_task(source.run(sink))
    try:
        await source.session.wait_connected()
        await eventually(check, what=what)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("tls", [False, True])
async def test_a_backlog_in_big_reads_is_handed_over_and_acknowledged_once(mqtt_broker: MosquittoBroker,
                                                                          tls: bool) -> None:
    config = bus(mqtt_broker, tls)
    client_id = f"batched-{'tls' if tls else 'plain'}"
    first = MqttSource(config, devices(), client_id=client_id)
    await run_until(first, RecordingSink(), lambda: first.session.connects == 1, "the session subscribed")

    sims = [SimDevice(str(i), "smoke", f"batch/smoke/{i}") for i in range(DEVICES)]
    with MqttDeviceFarm("127.0.0.1", mqtt_broker.port, client_id="batched-farm") as farm:
        infos = []
        for n in range(REPORTS):  # queued for the session while the source is away
            sim = sims[n % DEVICES]
            sim.battery = float(n % 100)
            infos.append(farm.publish(*smoke_up(sim, datetime.now(UTC)), wait=False))
            if n % (REPORTS // BIG) == 7:
                infos.append(farm.publish(f"batch/smoke/{n % DEVICES}/up", b"{" + b" " * 150_000 + b"}", wait=False))
        for info in infos:
            info.wait_for_publish(30)
    total = len(infos)

    sink = RecordingSink()
    source = MqttSource(config, devices(), client_id=client_id)
    await run_until(source, sink, lambda: source.messages >= total and source.committed_readings == 5 * REPORTS
                    and not source._pending.acks, "the whole backlog committed")
    assert source.messages == total and source.unrouted == 0
    assert len(sink.seen) == 5 * REPORTS
    assert source.parking.by_kind == {"too_large": BIG}  # the big ones came whole (their size) and were parked
    assert all(p.size == 150_002 for p in source.parking.recent)
    assert sorted(r.value for r in sink.seen if r.point == "battery") == sorted(float(n % 100) for n in range(REPORTS))

    # Everything was acknowledged: the same session, reconnected, gets only a new marker.
    with MqttDeviceFarm("127.0.0.1", mqtt_broker.port, client_id="batched-farm") as farm:
        farm.publish(*smoke_up(SimDevice("0", "smoke", "batch/smoke/0", battery=42.0), datetime.now(UTC)))
    again = MqttSource(config, devices(), client_id=client_id)
    marker = RecordingSink()
    await run_until(again, marker, lambda: again.committed_readings >= 5, "the marker")
    assert again.messages == 1 and [r.value for r in marker.seen if r.point == "battery"] == [42.0]
