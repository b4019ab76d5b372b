"""The MQTT "test device" read: listen on the device's topics for a while and decode what arrives.

An MQTT device cannot be asked for a value, so the probe is a listener: a short-lived client of
its own (clean session, so it leaves nothing queued at the broker) subscribes to the device's
topic filters and decodes the first message with the device's profile, showing the payload as it
arrived (``ProbeFrame`` "rx") and the points it became. Retained messages (availability, some
boxes' last state) arrive at once; otherwise the device has to publish within ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import aiomqtt

from drivers.mqtt.driver import MqttSource
from drivers.mqtt.payload import PayloadError
from drivers.mqtt.transport import tls_context
from edge.config.buses import MqttBusConfig
from edge.config.devices import DeviceConfig
from edge.errors import ConfigError
from edge.probes import DeviceProbe, ProbeFrame, ProbeValue


async def probe_mqtt_device(bus: MqttBusConfig, device: DeviceConfig, running_sources: Sequence[object] = (),
                            *, timeout_s: float = 5.0) -> DeviceProbe:
    started = time.perf_counter()
    try:
        source = MqttSource(bus, [device], client_id=f"{bus.client_id or 'estate-edge-' + bus.id}-probe")
    except ConfigError as exc:
        return DeviceProbe(device.id, ok=False, error="; ".join(exc.problems))
    running = next((s for s in running_sources if isinstance(s, MqttSource) and s.bus.id == bus.id), None)
    last = running.devices[device.id].last_message_at if running and device.id in running.devices else None
    settings = source.session.settings
    client = aiomqtt.Client(bus.host, bus.port, identifier=settings.client_id, username=settings.username,
                            password=settings.password, clean_session=True, timeout=min(timeout_s, bus.connect_timeout_s),
                            tls_context=tls_context(settings))
    frames: list[ProbeFrame] = []
    try:
        async with client, asyncio.timeout(timeout_s):
            await client.subscribe([(f, 1) for f in source.filters])
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                topic = message.topic.value
                frames.append(ProbeFrame("rx", payload[:4096], topic))
                for decoder in source.decoders_for(topic):  # none for an availability message: a frame only
                    try:
                        readings = decoder.decode(device.id, payload, datetime.now(UTC))
                    except PayloadError as exc:
                        return DeviceProbe(device.id, ok=False, frames=tuple(frames), error=f"{topic}: {exc.kind}: {exc}",
                                           duration_ms=_ms(started))
                    return DeviceProbe(device.id, ok=True, frames=tuple(frames),
                                       values=tuple(ProbeValue(r.point, r.value, r.unit) for r in readings),
                                       duration_ms=_ms(started))
    except TimeoutError:
        seen = f"; the gateway last heard it at {last.isoformat()}" if last else ""
        return DeviceProbe(device.id, ok=False, frames=tuple(frames), duration_ms=_ms(started),
                           error=f"no message on {', '.join(source.filters)} within {timeout_s:g} s{seen}")
    except aiomqtt.MqttError as exc:
        return DeviceProbe(device.id, ok=False, error=f"broker {bus.host}:{bus.port}: {exc}", duration_ms=_ms(started))
    return DeviceProbe(device.id, ok=False, frames=tuple(frames), error="the broker closed the connection",
                       duration_ms=_ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
