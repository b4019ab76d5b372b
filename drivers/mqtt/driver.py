"""The MQTT source: one per ``mqtt`` bus (broker connection), implementing ``edge.sources.Source``.

What it delivers to the sink:

* ``sink.readings``: every point of every well-formed message, in the profile's canonical unit,
  stamped with the payload's time when the profile says where it is (else the arrival time), with
  the payload's quality when it carries one (``BAD`` outside the point's valid range);
* ``sink.device_status``: online with a device's first messages (``online_after`` of them, for the
  rule engine's hysteresis), offline when a device was silent longer than its ``offline_after_s``
  (device option, else profile, else bus) or when its availability topic (the device's own state,
  or the last will the broker publishes for it) says offline;
* ``sink.events``: ``mqtt.payload_parked`` for payloads that cannot become readings (the first per
  device at once, then at most one a minute with the number suppressed).

Malformed payloads (bad JSON, wrong types, too large, invalid UTF-8, unknown units) are parked
(``drivers.mqtt.parking``): kept with topic and error, counted, shown in ``stats``; they never
raise out of the message handler and never become readings.

Delivery and acknowledgement: messages are decoded on arrival (a few microseconds each) into
pending lists; one delivery task hands everything pending to the sink in one call per kind (the
store's group commit turns it into one transaction), then acknowledges the messages in arrival
order. A failed commit drops the broker connection instead of acknowledging, so the broker
redelivers (see ``drivers.mqtt.transport`` for the in-flight window that bounds what waits).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import paho.mqtt.client as paho

from drivers.mqtt.parking import ParkingLot
from drivers.mqtt.payload import MessageDecoder, PayloadError
from drivers.mqtt.profile import AvailabilitySpec, MqttProfile, MqttProfileLibrary
from drivers.mqtt.selector import MISSING, Selector, SelectorError, compile_selector
from drivers.mqtt.topics import TopicRouter
from drivers.mqtt.transport import AckToken, BrokerSession, BrokerSettings
from edge.availability import DeviceAvailability, watch_silence
from edge.clock import Clock, SystemClock
from edge.config import EstateConfig
from edge.config.buses import MqttBusConfig
from edge.config.device_options import MqttDeviceOptions, parse_options
from edge.config.devices import DeviceConfig
from edge.errors import ConfigError
from edge.messages import say
from edge.records import DeviceStatus, Event, Reading, Severity
from edge.sources import Sink

log = logging.getLogger(__name__)

PARKED_EVENT_INTERVAL_S = 60.0
BATCH_WINDOW_S = 0.002
BATCH_GATHER = 500  # messages: deliver at once when this many wait
LAST_PAYLOAD_BYTES = 4096  # kept per device for the panel's devices page


@dataclass(slots=True)
class _Device:
    config: DeviceConfig
    profile: MqttProfile
    base_topic: str
    offline_after_s: float
    availability: DeviceAvailability
    last_seen: float = 0.0
    messages: int = 0
    readings: int = 0
    parked: int = 0
    last_message_at: datetime | None = None
    last_error: str | None = None
    last_topic: str | None = None  # the last routed message, well-formed or not, for the devices page
    last_payload: bytes | None = None  # a reference, not a copy (cut to LAST_PAYLOAD_BYTES when larger)
    last_heard_at: datetime | None = None

    @property
    def online(self) -> bool | None:
        return self.availability.online

    def as_dict(self) -> dict[str, Any]:
        return {"topic": self.base_topic, "profile": self.profile.id, "online": self.online, "messages": self.messages,
                "readings": self.readings, "parked": self.parked, "offline_after_s": self.offline_after_s,
                "last_message_at": self.last_message_at.isoformat() if self.last_message_at else None,
                "last_error": self.last_error}


@dataclass(frozen=True, slots=True)
class _Route:
    device: _Device
    decoder: MessageDecoder | None = None
    availability: AvailabilitySpec | None = None
    availability_select: Selector | None = None


@dataclass(slots=True)
class _Pending:
    readings: list[Reading] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    statuses: list[DeviceStatus] = field(default_factory=list)
    acks: list[AckToken] = field(default_factory=list)


def _join(base: str, suffix: str) -> str:
    return f"{base}/{suffix}" if suffix else base


class MqttSource:
    """Subscribes to every configured device's topics on one broker. Construct with ``build``."""

    def __init__(
        self,
        bus: MqttBusConfig,
        devices: Sequence[DeviceConfig],
        *,
        client_id: str,
        profiles: MqttProfileLibrary | None = None,
        online_after: int = 2,
        clock: Clock | None = None,
    ) -> None:
        self.bus = bus
        self.clock = clock or SystemClock()
        self.online_after = online_after
        library = profiles or MqttProfileLibrary([bus.profiles_dir] if bus.profiles_dir else [])
        problems: list[str] = []
        self.devices: dict[str, _Device] = {}
        self._router: TopicRouter[_Route] = TopicRouter()
        digests: list[str] = []
        for device in devices:
            if not device.enabled:
                continue
            try:  # the same check as the config's (edge.config.device_options), for sources built directly
                options = parse_options(MqttDeviceOptions, device.id, device.options)
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            try:
                self._add_device(device, options, library, digests)
            except ConfigError as exc:
                problems.extend(f"device {device.id}: {p}" for p in exc.problems)
        if problems:
            raise ConfigError(f"bus {bus.id}: {len(problems)} problem(s)", problems)
        self._fingerprint = hashlib.sha256(json.dumps(
            [bus.model_dump(mode="json"), [d.model_dump(mode="json") for d in devices], digests, client_id],
            sort_keys=True, default=str,
        ).encode()).hexdigest()[:16]
        s = bus
        self.session = BrokerSession(BrokerSettings(
            host=s.host, port=s.port, client_id=client_id, username=s.username,
            password=s.password.get_secret_value() if s.password else None,
            tls=s.tls, ca_file=s.ca_file, cert_file=s.cert_file, key_file=s.key_file, qos=s.qos,
            persistent_session=s.persistent_session, keepalive_s=s.keepalive_s, connect_timeout_s=s.connect_timeout_s,
            backoff_initial_s=s.backoff_initial_s, backoff_max_s=s.backoff_max_s,
        ), name=self.name)
        self.parking = ParkingLot()
        self._pending = _Pending()
        self._wake = asyncio.Event()
        self._parked_events: dict[str, tuple[float, int]] = {}
        self.messages = 0
        self.unrouted = 0
        self.committed_readings = 0
        self.sink_errors = 0

    def _add_device(self, device: DeviceConfig, options: MqttDeviceOptions, library: MqttProfileLibrary,
                    digests: list[str]) -> None:
        if not device.profile:
            raise ConfigError("an MQTT device needs a profile")
        profile = library.get(device.profile)
        digests.append(profile.model_dump_json())
        offline = options.offline_after_s or profile.offline_after_s or self.bus.offline_after_s
        state = _Device(device, profile, options.topic.rstrip("/"), float(offline),
                        DeviceAvailability(device.id, self.name, online_after=self.online_after))
        self.devices[device.id] = state
        for message in profile.messages:
            self._router.add(_join(state.base_topic, message.topic), _Route(state, decoder=MessageDecoder(message)))
        if profile.availability is not None:
            spec = profile.availability
            self._router.add(_join(state.base_topic, spec.topic), _Route(
                state, availability=spec, availability_select=compile_selector(spec.select) if spec.select else None))

    # ------------------------------------------------------------------ Source protocol

    @property
    def name(self) -> str:
        return f"bus:{self.bus.id}"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def filters(self) -> list[str]:
        """The topic filters this source subscribes to."""
        return self._router.filters

    def decoders_for(self, topic: str) -> list[MessageDecoder]:
        """The payload decoders that a message on ``topic`` goes through (for the probe)."""
        return [route.decoder for route in self._router.route(topic) if route.decoder is not None]

    async def run(self, sink: Sink) -> None:
        now = self.clock.monotonic()
        for device in self.devices.values():
            device.last_seen = now  # silence counts from the start: a device never heard goes offline too
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.session.run(self.filters, self._on_message), name=f"{self.name}:session")
                tg.create_task(self._deliver_forever(sink), name=f"{self.name}:deliver")
                tg.create_task(watch_silence(self.clock, self.devices.values(), self._silent), name=f"{self.name}:silence")
        finally:
            try:
                async with asyncio.timeout(1.0):
                    await self._deliver(sink)
            except (TimeoutError, Exception):
                log.warning("%s: %d readings not delivered at shutdown (the broker redelivers unacknowledged ones)",
                            self.name, len(self._pending.readings))

    # ------------------------------------------------------------------ receiving (synchronous, never raises)

    def _on_message(self, message: paho.MQTTMessage, token: AckToken) -> None:
        self.messages += 1
        try:
            topic = message.topic
        except UnicodeDecodeError:  # a topic name that is not UTF-8 breaks MQTT itself; count and ack it
            self.unrouted += 1
            self._pending.acks.append(token)
            return
        # paho types payload bytes | bytearray (shared with outgoing messages); a received one is bytes
        payload = cast(bytes, message.payload)
        pending = self._pending
        routed = False
        for route in self._router.route(topic):
            routed = True
            try:
                self._handle(route, topic, payload, pending)
            except Exception as exc:  # a decoder bug must not stop the source: park it, loudly
                log.exception("%s: unexpected error on %s", self.name, topic)
                self._park(route.device, topic, "internal", f"{type(exc).__name__}: {exc}", payload)
        if not routed:
            self.unrouted += 1
        pending.acks.append(token)
        self._wake.set()

    def _handle(self, route: _Route, topic: str, payload: bytes, pending: _Pending) -> None:
        device = route.device
        now = self.clock.now()
        device.last_topic = topic
        device.last_payload = payload if len(payload) <= LAST_PAYLOAD_BYTES else payload[:LAST_PAYLOAD_BYTES]
        device.last_heard_at = now
        if len(payload) > self.bus.max_payload_bytes:
            self._park(device, topic, "too_large", f"{len(payload)} bytes (limit {self.bus.max_payload_bytes})", payload)
            return
        if route.availability is not None:
            self._availability(device, route, topic, payload, now)
            return
        assert route.decoder is not None
        try:
            readings = route.decoder.decode(device.config.id, payload, now)
        except PayloadError as exc:
            self._park(device, topic, exc.kind, str(exc), payload)
            return
        pending.readings.extend(readings)
        device.readings += len(readings)
        device.messages += 1
        device.last_message_at = now
        device.last_seen = self.clock.monotonic()
        device.last_error = None
        status = device.availability.up(now)
        if status is not None:
            pending.statuses.append(status)

    def _availability(self, device: _Device, route: _Route, topic: str, payload: bytes, now: datetime) -> None:
        spec = route.availability
        assert spec is not None
        try:
            text = payload.decode("utf-8").strip()
            if route.availability_select is not None:
                found = route.availability_select.select(json.loads(text))
                text = "" if found is MISSING else str(found).strip()
        except (UnicodeDecodeError, json.JSONDecodeError, SelectorError) as exc:
            self._park(device, topic, "availability", f"unreadable availability payload: {exc}", payload)
            return
        word = text.lower()
        if word in (w.lower() for w in spec.offline):
            device.last_error = f"availability topic {topic} says {text!r} (device or broker last will)"
            self._pending.statuses.append(device.availability.down(now, device.last_error))
        elif word in (w.lower() for w in spec.online):
            device.last_seen = self.clock.monotonic()
            if device.online is not True:  # a retained "online" repeated is not a new answer
                status = device.availability.up(now)
                if status is not None:
                    self._pending.statuses.append(status)
        else:
            self._park(device, topic, "availability",
                       f"availability {text[:40]!r} is neither {spec.online} nor {spec.offline}", payload)

    def _park(self, device: _Device, topic: str, kind: str, error: str, payload: bytes) -> None:
        now = self.clock.now()
        self.parking.park(now, topic, device.config.id, kind, error, payload)
        device.parked += 1
        device.last_error = f"{kind}: {error}"
        mono = self.clock.monotonic()
        last, suppressed = self._parked_events.get(device.config.id, (None, 0))
        if last is not None and mono - last < PARKED_EVENT_INTERVAL_S:
            self._parked_events[device.config.id] = (last, suppressed + 1)
            return
        self._parked_events[device.config.id] = (mono, 0)
        self._pending.events.append(Event(
            code="mqtt.payload_parked", ts=now, device_id=device.config.id, severity=Severity.WARNING,
            **say("mqtt.payload_parked", device=device.config.id),
            data={"bus": self.bus.id, "topic": topic, "kind": kind, "error": error, "size": len(payload),
                  "suppressed": suppressed},
        ))

    # ------------------------------------------------------------------ delivery

    async def _deliver_forever(self, sink: Sink) -> None:
        """Deliver whenever something is pending; a burst is gathered for ``BATCH_WINDOW_S`` first.

        Why wait at all: without it a busy broker connection delivers (and acknowledges) one message
        per event-loop turn, which costs more than decoding; 2 ms is nothing next to a commit.
        """
        while True:
            await self._wake.wait()
            if len(self._pending.acks) < BATCH_GATHER:
                await asyncio.sleep(BATCH_WINDOW_S)
            self._wake.clear()
            await self._deliver(sink)

    async def _deliver(self, sink: Sink) -> None:
        """Hand everything pending to the sink, then acknowledge it; a failed commit reconnects instead."""
        pending, self._pending = self._pending, _Pending()
        try:
            for status in pending.statuses:
                await sink.device_status(status)
            if pending.events:
                await sink.events(pending.events)
            if pending.readings:
                await sink.readings(pending.readings)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.sink_errors += 1
            log.exception("%s: the sink refused %d readings; reconnecting so the broker redelivers",
                          self.name, len(pending.readings))
            self.session.reconnect()
            return
        self.committed_readings += len(pending.readings)
        for token in pending.acks:
            self.session.ack(token)

    def _silent(self, device: _Device, silent: float) -> None:
        """Offline after a silence longer than the device's ``offline_after_s`` (``edge.availability.watch_silence``)."""
        broker = "" if self.session.connected else f"; broker not connected: {self.session.last_error}"
        device.last_error = f"no message for {silent:.0f} s (limit {device.offline_after_s:g} s){broker}"
        self._pending.statuses.append(device.availability.down(self.clock.now(), device.last_error))
        self._wake.set()

    # ------------------------------------------------------------------ for the panel and the bench

    @property
    def stats(self) -> dict[str, Any]:
        return {
            "bus": self.bus.id,
            "kind": self.bus.kind,
            "connected": self.session.connected,
            "connects": self.session.connects,
            "disconnects": self.session.disconnects,
            "last_error": self.session.last_error,
            "messages": self.messages,
            "unrouted": self.unrouted,
            "committed_readings": self.committed_readings,
            "waiting_readings": len(self._pending.readings),
            "sink_errors": self.sink_errors,
            "parked": self.parking.as_dict(),
            "devices": {device_id: d.as_dict() for device_id, d in self.devices.items()},
        }


def build(bus: object, devices: list[DeviceConfig], config: EstateConfig) -> MqttSource:
    """Registry entry point: a source for one ``mqtt`` bus of the estate config."""
    if not isinstance(bus, MqttBusConfig):
        raise ConfigError(f"the MQTT driver cannot serve a bus of kind {getattr(bus, 'kind', type(bus).__name__)!r}")
    return MqttSource(bus, devices, client_id=bus.client_id or f"estate-edge-{config.estate.gateway_id}-{bus.id}",
                      online_after=config.thresholds.online_after_successes)
