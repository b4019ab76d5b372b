"""The MQTT source against a real Mosquitto (started by the test on free ports) and the device farm simulator.

Covers: the three shipped profiles end to end, malformed payloads parked with the source still
running, offline after silence and by the broker's last will, TLS with a client certificate,
QoS 1 persistent sessions (messages published while the gateway is away arrive after it returns),
a broker restart, and acknowledgement only after commit (a failed commit gets redelivered).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from drivers.mqtt.driver import MqttSource
from edge.config.buses import MqttBusConfig
from edge.config.devices import DeviceConfig
from edge.records import Reading
from simulators.mqtt.broker import MosquittoBroker
from simulators.mqtt.devices import MALFORMED, SimDevice
from simulators.mqtt.farm import DeviceLink, MqttDeviceFarm
from tests.helpers.sink import RecordingSink
from tests.helpers.waiting import eventually

FARM = [
    SimDevice("smoke-1", "smoke", "estate/e1/smoke/1", alarm=True, battery=77),
    SimDevice("leak-1", "leak", "estate/e1/leak/1", alarm=True, battery=64),
    SimDevice("lift-1", "lift", "estate/e1/lift/1", running=True, floor=9, motor_current_ma=11000),
]


def bus(port: int, **kw: Any) -> MqttBusConfig:
    base: dict[str, Any] = {"kind": "mqtt", "id": "mq", "host": "127.0.0.1", "port": port,
                            "backoff_initial_s": 0.05, "backoff_max_s": 0.2}
    return MqttBusConfig.model_validate({**base, **kw})


def device(sim: SimDevice, **options: Any) -> DeviceConfig:
    return DeviceConfig.model_validate({
        "id": sim.id, "name": sim.id, "bus": "mq", "profile": sim.profile, "category": "other",
        "location": {"building": "1栋"}, "options": {"topic": sim.base_topic, **options},
    })




@contextlib.asynccontextmanager
async def running(source: MqttSource, sink: Any) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(source.run(sink))
    try:
        await asyncio.wait_for(source.session.wait_connected(), 10)
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def test_farm_devices_through_a_real_broker(mqtt_broker: MosquittoBroker) -> None:
    source = MqttSource(bus(mqtt_broker.port), [device(d) for d in FARM], client_id="gw-farm")
    sink = RecordingSink()
    async with running(source, sink):
        with MqttDeviceFarm("127.0.0.1", mqtt_broker.port, FARM) as farm:
            for d in FARM:
                await in_thread(farm.report, d.id)
            await eventually(lambda: len(sink.readings_seen) >= 5 + 2 + 7, what="readings of all three devices")
    latest = sink.latest()
    assert latest[("smoke-1", "alarm")].value == 1 and latest[("smoke-1", "battery")].value == 77
    assert latest[("leak-1", "leak")].value == 1 and latest[("leak-1", "battery")].value == 64
    assert latest[("lift-1", "floor")].value == 9 and latest[("lift-1", "motor_current")].value == pytest.approx(11.0)
    assert {s.device_id for s in sink.statuses if s.online} == {"smoke-1", "leak-1", "lift-1"}
    stats = source.stats
    assert stats["parked"]["total"] == 0 and stats["committed_readings"] == len(sink.readings_seen)
    assert stats["devices"]["lift-1"]["messages"] == 1 and stats["devices"]["leak-1"]["messages"] == 2


async def test_malformed_payloads_are_parked_and_the_source_keeps_going(mqtt_broker: MosquittoBroker) -> None:
    smoke = FARM[0]
    source = MqttSource(bus(mqtt_broker.port), [device(smoke)], client_id="gw-parking")
    sink = RecordingSink()
    async with running(source, sink) as task:
        with MqttDeviceFarm("127.0.0.1", mqtt_broker.port, [smoke]) as farm:
            for payload in MALFORMED.values():
                await in_thread(farm.publish, f"{smoke.base_topic}/up", payload)
            await in_thread(farm.publish, f"{smoke.base_topic}/up", b'{"alarm": 3, "battery": 50, "signal": {"rsrp": null}}')
            await eventually(lambda: source.parking.total == 5, what="five parked payloads")
            await in_thread(farm.report, smoke.id)
            await eventually(lambda: len(sink.readings_seen) > 0, what="a good report after the bad ones")
        assert not task.done()
    parked = source.stats["parked"]
    assert parked["by_kind"] == {"json": 1, "type": 1, "utf8": 1, "too_large": 1, "missing": 1}
    assert parked["by_device"] == {"smoke-1": 5}
    big = next(p for p in parked["recent"] if p["kind"] == "too_large")
    assert big["topic"] == "estate/e1/smoke/1/up" and big["size"] > 1024 * 1024 and len(big["preview"]) <= 120
    assert next(p for p in parked["recent"] if p["kind"] == "utf8")["preview"].startswith("hex:")
    # Nothing of a parked payload became a reading: only the good report's five points.
    assert sorted(r.point for r in sink.readings_seen) == ["alarm", "battery", "fault", "signal_rsrp_dbm", "signal_snr_db"]
    # One event for the first parked payload (staff-visible, Chinese), the rest counted for a minute.
    events = [e for e in sink.events_seen if e.code == "mqtt.payload_parked"]
    assert len(events) == 1 and "已隔离" in events[0].message and events[0].data["topic"] == "estate/e1/smoke/1/up"


async def test_offline_after_silence_and_by_last_will(mqtt_broker: MosquittoBroker) -> None:
    leak, lift = FARM[1], FARM[2]
    source = MqttSource(bus(mqtt_broker.port), [device(leak, offline_after_s=0.4), device(lift)], client_id="gw-avail")
    sink = RecordingSink()
    link = DeviceLink("127.0.0.1", mqtt_broker.port, lift.base_topic)
    async with running(source, sink):
        with MqttDeviceFarm("127.0.0.1", mqtt_broker.port, [leak, lift]) as farm:
            await in_thread(farm.report, leak.id)
            await in_thread(link.online)
            await eventually(lambda: source.devices["lift-1"].online is True, what="lift online by its status topic")
            await eventually(lambda: any(not s.online for s in sink.statuses if s.device_id == "leak-1"),
                             what="leak probe offline after 0.4 s of silence")
            await in_thread(link.drop)
            await eventually(lambda: any(not s.online for s in sink.statuses if s.device_id == "lift-1"),
                             what="lift offline by the broker's last will")
            await in_thread(farm.report, leak.id)
            await eventually(lambda: [s.online for s in sink.statuses if s.device_id == "leak-1"][-1],
                             what="leak probe online again with its next message")
    leak_states = [s.online for s in sink.statuses if s.device_id == "leak-1"]
    assert leak_states[0] is True and False in leak_states and leak_states[-1] is True
    silence = next(s for s in sink.statuses if s.device_id == "leak-1" and not s.online)
    assert "no message for" in (silence.error or "")
    will = next(s for s in sink.statuses if s.device_id == "lift-1" and not s.online)
    assert "last will" in (will.error or "") and "offline" in (will.error or "")


async def test_tls_with_client_certificate(mqtt_broker: MosquittoBroker) -> None:
    tls = mqtt_broker.tls
    assert tls is not None and mqtt_broker.tls_port is not None
    smoke = FARM[0]
    source = MqttSource(bus(mqtt_broker.tls_port, tls=True, ca_file=tls.ca, cert_file=tls.client_cert,
                            key_file=tls.client_key), [device(smoke)], client_id="gw-tls")
    sink = RecordingSink()
    async with running(source, sink):
        with MqttDeviceFarm("127.0.0.1", mqtt_broker.port, [smoke]) as farm:
            await in_thread(farm.report, smoke.id)
            await eventually(lambda: len(sink.readings_seen) == 5, what="readings over TLS")
    # Without the client certificate the broker refuses the TLS handshake: the source retries, never crashes.
    refused = MqttSource(bus(mqtt_broker.tls_port, tls=True, ca_file=tls.ca, connect_timeout_s=1),
                         [device(smoke)], client_id="gw-nocert")
    task = asyncio.create_task(refused.run(RecordingSink()))
    await eventually(lambda: refused.session.last_error is not None, what="a recorded TLS failure")
    assert not task.done() and not refused.session.connected
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_persistent_session_and_broker_restart(mqtt_broker: MosquittoBroker) -> None:
    leak = FARM[1]
    cfg = bus(mqtt_broker.port)
    sink = RecordingSink()

    def values() -> list[float]:
        return [r.value for r in sink.of("leak-1", "battery")]

    with MqttDeviceFarm("127.0.0.1", mqtt_broker.port, [leak], client_id="farm-1") as farm:
        source = MqttSource(cfg, [device(leak)], client_id="gw-persist")
        async with running(source, sink):
            await in_thread(farm.publish, f"{leak.base_topic}/battery", b"90")
            await eventually(lambda: values() == [90.0], what="first value")
        # The gateway is away: QoS 1 messages wait in its persistent session.
        for level in (89, 88, 87):
            await in_thread(farm.publish, f"{leak.base_topic}/battery", str(level).encode())
        source = MqttSource(cfg, [device(leak)], client_id="gw-persist")
        async with running(source, sink):
            await eventually(lambda: values() == [90.0, 89.0, 88.0, 87.0], what="messages queued while away")
    # The broker restarts (it saves sessions on SIGTERM): the source reconnects by itself and goes on.
    async with running(source := MqttSource(cfg, [device(leak)], client_id="gw-persist"), sink):
        await in_thread(mqtt_broker.restart)
        await eventually(lambda: source.session.connected and source.session.connects >= 2, what="reconnect")
        with MqttDeviceFarm("127.0.0.1", mqtt_broker.port, [leak], client_id="farm-2") as farm:
            await in_thread(farm.publish, f"{leak.base_topic}/battery", b"86")
            await eventually(lambda: values()[-1:] == [86.0], what="a message after the restart")
    assert source.session.disconnects >= 1


class FlakySink(RecordingSink):
    """Refuses the first commit, as a full disk would: the source must not acknowledge those messages."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    async def readings(self, readings: Sequence[Reading]) -> None:
        if self.refused == 0:
            self.refused += 1
            raise OSError("disk full (test)")
        await super().readings(readings)


async def test_unacknowledged_messages_are_redelivered_after_a_failed_commit(mqtt_broker: MosquittoBroker) -> None:
    leak = FARM[1]
    source = MqttSource(bus(mqtt_broker.port), [device(leak)], client_id="gw-ack")
    sink = FlakySink()
    async with running(source, sink):
        with MqttDeviceFarm("127.0.0.1", mqtt_broker.port, [leak]) as farm:
            await in_thread(farm.publish, f"{leak.base_topic}/battery", b"55")
            await eventually(lambda: sink.refused == 1, what="the refused commit")
            await eventually(lambda: [r.value for r in sink.readings_seen] == [55.0], what="the redelivered message")
    assert source.sink_errors == 1 and source.session.connects >= 2


async def test_probe_listens_and_decodes(mqtt_broker: MosquittoBroker) -> None:
    from drivers.mqtt.probe import probe_mqtt_device

    lift = FARM[2]
    with MqttDeviceFarm("127.0.0.1", mqtt_broker.port, [lift]) as farm:
        # A retained report arrives at once, so the probe decodes it without waiting for the box.
        topic, payload = reports_of(lift)[0]
        await in_thread(lambda: farm.publish(topic, payload, retain=True))
        probe = await probe_mqtt_device(bus(mqtt_broker.port), device(lift), timeout_s=5)
    assert probe.ok and probe.frames[0].note == "estate/e1/lift/1/report"
    assert {v.point: v.value for v in probe.values}["floor"] == 9
    silent = await probe_mqtt_device(bus(mqtt_broker.port), device(FARM[1]), timeout_s=0.3)
    assert not silent.ok and "no message on estate/e1/leak/1/battery" in (silent.error or "")


def reports_of(sim: SimDevice) -> list[tuple[str, bytes]]:
    from simulators.mqtt.devices import reports

    return reports(sim)


async def test_username_and_password(mqtt_broker: MosquittoBroker) -> None:
    assert mqtt_broker.auth_port is not None
    leak = FARM[1]
    source = MqttSource(bus(mqtt_broker.auth_port, username="gateway", password="s3cret-pass"), [device(leak)],
                        client_id="gw-auth")
    sink = RecordingSink()
    async with running(source, sink):
        with MqttDeviceFarm("127.0.0.1", mqtt_broker.port, [leak]) as farm:
            await in_thread(farm.report, leak.id)
            await eventually(lambda: len(sink.readings_seen) == 2, what="readings for an authenticated client")
    refused = MqttSource(bus(mqtt_broker.auth_port, username="gateway", password="wrong"), [device(leak)],
                         client_id="gw-badpass")
    task = asyncio.create_task(refused.run(RecordingSink()))
    try:
        await eventually(lambda: refused.session.last_error is not None, what="a refused login")
        assert not refused.session.connected and "127.0.0.1" in (refused.session.last_error or "")
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
