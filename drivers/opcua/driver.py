"""The OPC-UA source: one session per ``opcua`` bus (a PLC's server), implementing ``edge.sources.Source``.

What it delivers to the sink:

* ``sink.readings``: each point's value when it changes (subscription, with the profile's absolute
  deadband where the server accepts the filter) or at every poll (where the server refuses
  subscriptions, or ``mode: poll``), in the profile's canonical unit, stamped with the server's
  source timestamp, with the quality of the OPC-UA status code (Good / Uncertain / Bad) and
  ``BAD`` outside the point's valid range. Non-numeric values, and Bad statuses that carry no
  value, are counted per device (``stats``), not stored;
* ``sink.device_status``: online once a session has resolved and read every node of the device;
  offline when a node is missing (naming it), when the session is lost, and at every failed
  reconnect attempt (the rule engine's hysteresis decides the alarm).

Reconnect with subscription recovery is done here rather than with asyncua's ``auto_reconnect``:
after a PLC restart the namespace array may be in another order, so every reconnect resolves the
config's ``nsu=`` node ids again (``drivers.opcua.nodeid``) and creates the subscription anew on
the fresh ids; asyncua's own recovery would re-create monitored items on the old indices.
Waits between attempts double from ``backoff_initial_s`` to ``backoff_max_s`` with equal jitter.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Client, Node, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

from drivers.opcua.nodeid import NodeIdError, NodeRef
from drivers.opcua.profile import OpcUaPoint, OpcUaProfile, OpcUaProfileLibrary
from drivers.opcua.security import CertificateInfo, ensure_client_certificate
from drivers.push import PushDelivery
from edge.availability import DeviceAvailability
from edge.backoff import Backoff
from edge.clock import Clock, SystemClock
from edge.config import EstateConfig
from edge.config.buses import OpcUaBusConfig
from edge.config.devices import DeviceConfig
from edge.errors import ConfigError
from edge.records import Quality, Reading
from edge.sources import Sink
from edge.tasks import retry_after, wait_event
from edge.units import convert

log = logging.getLogger(__name__)

# Status codes meaning "this server cannot do that", after which we fall back instead of failing.
_NO_SUBSCRIPTIONS = {ua.StatusCodes.BadServiceUnsupported, ua.StatusCodes.BadTooManySubscriptions,
                     ua.StatusCodes.BadNotSupported, ua.StatusCodes.BadNotImplemented}
_NO_DEADBAND = {ua.StatusCodes.BadMonitoredItemFilterUnsupported, ua.StatusCodes.BadFilterNotAllowed,
                ua.StatusCodes.BadDeadbandFilterInvalid, ua.StatusCodes.BadMonitoredItemFilterInvalid}
_DEVICE_OPTIONS_RESERVED = {"namespace"}


@dataclass(slots=True)
class _Device:
    config: DeviceConfig
    profile: OpcUaProfile
    refs: dict[str, NodeRef]
    availability: DeviceAvailability
    readings: int = 0
    non_numeric: int = 0
    bad_status: int = 0
    last_value_at: datetime | None = None
    last_error: str | None = None
    last_point: str | None = None  # the last value stored, for the panel's devices page
    last_value: float = 0.0

    @property
    def online(self) -> bool | None:
        return self.availability.online

    def as_dict(self) -> dict[str, Any]:
        return {"profile": self.profile.id, "online": self.online, "readings": self.readings,
                "non_numeric": self.non_numeric, "bad_status": self.bad_status, "last_error": self.last_error,
                "last_value_at": self.last_value_at.isoformat() if self.last_value_at else None,
                "nodes": {point: str(ref) for point, ref in self.refs.items()}}


@dataclass(frozen=True, slots=True)
class _Binding:
    device: _Device
    point: str
    spec: OpcUaPoint


class _Lost(Exception):
    """The session ended (asyncua's watchdog saw the server go away)."""


class OpcUaSource:
    """Reads every configured device of one OPC-UA server. Construct with ``build``."""

    def __init__(
        self,
        bus: OpcUaBusConfig,
        devices: Sequence[DeviceConfig],
        *,
        certificate_dir: Path,
        application_uri: str,
        profiles: OpcUaProfileLibrary | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.bus = bus
        self.clock = clock or SystemClock()
        self.certificate_dir = Path(bus.certificate_dir or certificate_dir)
        self.application_uri = application_uri
        library = profiles or OpcUaProfileLibrary([bus.profiles_dir] if bus.profiles_dir else [])
        problems: list[str] = []
        self.devices: dict[str, _Device] = {}
        digests: list[str] = []
        for device in devices:
            if not device.enabled:
                continue
            if not device.profile:
                problems.append(f"device {device.id}: an OPC-UA device needs a profile")
                continue
            try:
                profile = library.get(device.profile)
                refs = profile.node_refs(device.options)
            except ConfigError as exc:
                problems.extend(f"device {device.id}: {p}" for p in exc.problems)
                continue
            digests.append(profile.model_dump_json())
            # Reported online once per session that reads every node (online_after=1).
            self.devices[device.id] = _Device(device, profile, refs, DeviceAvailability(device.id, self.name, 1))
        if problems:
            raise ConfigError(f"bus {bus.id}: {len(problems)} problem(s)", problems)
        self._fingerprint = hashlib.sha256(json.dumps(
            [bus.model_dump(mode="json"), [d.model_dump(mode="json") for d in devices], digests, application_uri],
            sort_keys=True, default=str,
        ).encode()).hexdigest()[:16]
        self.poll_interval_s = min((d.config.poll_interval_s for d in self.devices.values()), default=10.0)
        self._delivery = PushDelivery(self.name)
        self._bindings: dict[ua.NodeId, _Binding] = {}
        self.certificate: CertificateInfo | None = None
        self.connected = False
        self.connects = 0
        self.disconnects = 0
        self.last_error: str | None = None
        self.mode_in_use: str | None = None
        self.deadband_items = 0
        self.plain_items = 0
        self.namespace_index: dict[str, int] = {}
        self._ready = asyncio.Event()

    # ------------------------------------------------------------------ Source protocol

    @property
    def name(self) -> str:
        return f"bus:{self.bus.id}"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    async def run(self, sink: Sink) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._sessions(), name=f"{self.name}:session")
                tg.create_task(self._delivery.run(sink), name=f"{self.name}:deliver")
        finally:
            await self._delivery.flush(sink)

    async def wait_connected(self) -> None:
        await self._ready.wait()

    # ------------------------------------------------------------------ sessions

    async def _sessions(self) -> None:
        backoff = Backoff(self.bus.backoff_initial_s, self.bus.backoff_max_s, jitter="equal")
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (_Lost, OSError, TimeoutError, ua.UaError, ConnectionError, ValueError) as exc:
                hint = ""
                if (self.bus.security_policy != "None" and self.pinned_server_certificate.is_file()
                        and not isinstance(exc, ConnectionRefusedError | _Lost)):
                    hint = (f" (the server certificate is pinned in {self.pinned_server_certificate}; if the PLC got a "
                            "new certificate, delete that file to trust it)")
                self._lost(f"{self.bus.endpoint}: {type(exc).__name__}: {exc}{hint}")
            if self._ready.is_set():
                backoff.reset()
            self._ready.clear()
            await retry_after(backoff.next_delay())

    async def new_client(self) -> Client:
        """A client for this bus's server with its security and user settings, not yet connected."""
        client = Client(self.bus.endpoint, timeout=self.bus.timeout_s, watchdog_intervall=max(0.5, self.bus.timeout_s / 2))
        client.application_uri = self.application_uri
        client.name = client.description = f"estate-edge {self.bus.id}"
        if self.bus.username:
            client.set_user(self.bus.username)
        if self.bus.password:
            client.set_password(self.bus.password.get_secret_value())
        if self.bus.security_policy == "Basic256Sha256":
            self.certificate = await ensure_client_certificate(self.certificate_dir, self.application_uri)
            mode = getattr(ua.MessageSecurityMode, self.bus.security_mode)
            pinned = self.bus.server_certificate or (self.pinned_server_certificate
                                                     if self.pinned_server_certificate.is_file() else None)
            await client.set_security(
                SecurityPolicyBasic256Sha256,
                certificate=str(self.certificate.cert_file),
                private_key=str(self.certificate.key_file),
                server_certificate=str(pinned) if pinned else None,
                mode=mode,
            )
        return client

    @property
    def pinned_server_certificate(self) -> Path:
        """Where the server certificate seen on first use is kept (trust on first use, then pinned)."""
        return self.certificate_dir / f"server-{self.bus.id}.der"

    def _pin_server_certificate(self, client: Client) -> None:
        """After the first secure session, keep the server's certificate: later sessions accept only it.

        Why: without a configured ``server_certificate`` the first one comes from the server's own
        endpoint list; pinning it means a swapped server (or a man in the middle later on) fails the
        handshake instead of receiving the readings' session. A PLC that really got a new
        certificate is trusted again by deleting the file (the error names it).
        """
        if self.bus.security_policy == "None" or self.bus.server_certificate or self.pinned_server_certificate.is_file():
            return
        der = getattr(client.security_policy, "peer_certificate", None)
        if der:
            self.pinned_server_certificate.write_bytes(der)
            log.info("%s: pinned the server certificate in %s", self.name, self.pinned_server_certificate)

    async def _session(self) -> None:
        client = await self.new_client()
        lost = asyncio.Event()

        async def on_lost(exc: Exception) -> None:
            lost.set()

        client.connection_lost_callback = on_lost
        async with client:
            namespaces = await client.get_namespace_array()
            self._pin_server_certificate(client)
            nodes = self._resolve(client, namespaces)
            await self._first_read(client, nodes)
            subscription = None
            if self.bus.mode != "poll":
                subscription = await self._subscribe(client, nodes)
            self.mode_in_use = "subscribe" if subscription is not None else "poll"
            self.connected = True
            self.connects += 1
            if self.connects > 1 or self.last_error:
                log.info("%s: connected to %s again (%s)", self.name, self.bus.endpoint, self.mode_in_use)
            self.last_error = None
            self._ready.set()
            try:
                while not lost.is_set():
                    if subscription is None:
                        await self._poll(client, nodes)
                    await wait_event(lost, self.poll_interval_s if subscription is None else 3600)
                raise _Lost("the server stopped answering")
            finally:
                self.connected = False
                self.disconnects += 1

    def _resolve(self, client: Client, namespaces: list[str]) -> list[Node]:
        """Bind every device's nodes for this session; a device with an unknown namespace goes offline."""
        self._bindings = {}
        self.namespace_index = {uri: i for i, uri in enumerate(namespaces)}
        nodes: list[Node] = []
        for device in self.devices.values():
            try:
                ids = {point: ref.resolve(namespaces) for point, ref in device.refs.items()}
            except NodeIdError as exc:
                self._device_offline(device, str(exc))
                continue
            for point, node_id in ids.items():
                self._bindings[node_id] = _Binding(device, point, device.profile.points[point])
                nodes.append(client.get_node(node_id))
        return nodes

    async def _first_read(self, client: Client, nodes: list[Node]) -> None:
        """Read every node once: it proves each exists (a missing one names itself).

        The values are not delivered: a subscription sends every item's current value first anyway,
        and the polling fallback reads again at once.
        """
        if not nodes:
            return
        values = await client.read_attributes(nodes, ua.AttributeIds.Value)
        broken: dict[str, str] = {}
        for node, value in zip(nodes, values, strict=True):
            binding = self._bindings[node.nodeid]
            code = value.StatusCode
            if code is not None and code.value in (ua.StatusCodes.BadNodeIdUnknown, ua.StatusCodes.BadNodeIdInvalid,
                                                  ua.StatusCodes.BadAttributeIdInvalid):
                broken.setdefault(binding.device.config.id, f"{binding.device.refs[binding.point]}: {code.name}")
        now = self.clock.now()
        for device in self.devices.values():
            if device.config.id in broken:
                self._device_offline(device, f"node missing on the server: {broken[device.config.id]}")
            elif any(b.device is device for b in self._bindings.values()):
                device.last_error = None
                status = device.availability.up(now)
                if status is not None:
                    self._delivery.pending.statuses.append(status)
        self._delivery.wake()

    async def _subscribe(self, client: Client, nodes: list[Node]) -> Any:
        """A subscription with deadband filters where accepted; ``None`` when the server refuses subscriptions."""
        period_ms = self.poll_interval_s * 1000
        try:
            subscription = await client.create_subscription(period_ms, self)
        except ua.UaStatusCodeError as exc:
            if exc.code in _NO_SUBSCRIPTIONS and self.bus.mode == "auto":
                log.info("%s: the server refuses subscriptions (%s); polling every %g s",
                         self.name, type(exc).__name__, self.poll_interval_s)
                return None
            raise
        self.deadband_items = self.plain_items = 0
        plain: list[Node] = []
        for node in nodes:
            deadband = self._bindings[node.nodeid].spec.deadband
            if deadband:
                try:
                    await subscription.deadband_monitor(node, ua.Double(deadband))
                    self.deadband_items += 1
                    continue
                except ua.UaStatusCodeError as exc:
                    if exc.code not in _NO_DEADBAND:
                        raise
            plain.append(node)
        if plain:
            await subscription.subscribe_data_change(plain)
            self.plain_items += len(plain)
        return subscription

    async def _poll(self, client: Client, nodes: list[Node]) -> None:
        if not nodes:
            return
        values = await client.read_attributes(nodes, ua.AttributeIds.Value)
        for node, value in zip(nodes, values, strict=True):
            self._value(self._bindings[node.nodeid], value)
        self._delivery.wake()

    # ------------------------------------------------------------------ asyncua subscription handler

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        binding = self._bindings.get(node.nodeid)
        if binding is not None:
            self._value(binding, data.monitored_item.Value)
            self._delivery.wake()

    def status_change_notification(self, status: Any) -> None:
        log.info("%s: subscription status %s", self.name, status)

    # ------------------------------------------------------------------ values and states

    def _value(self, binding: _Binding, data: ua.DataValue) -> None:
        device = binding.device
        raw = data.Value.Value if data.Value is not None else None
        code = data.StatusCode
        if raw is None and code is not None and not code.is_good():
            # A Bad status without a value (a broken sensor loop, a stopped I/O module): nothing to
            # store, but counted and named on the panel; the device itself still answers.
            device.bad_status += 1
            device.last_error = f"{binding.point}: {code.name}"
            return
        if isinstance(raw, bool):
            value = 1.0 if raw else 0.0
        elif isinstance(raw, int | float):
            value = float(raw)
        else:
            device.non_numeric += 1
            device.last_error = f"{binding.point}: value {raw!r} is not a number"
            return
        spec = binding.spec
        value *= spec.scale
        if spec.device_unit is not None and spec.device_unit != spec.unit:
            value = convert(value, spec.device_unit, spec.unit)
        quality = Quality.GOOD
        if code is not None and not code.is_good():
            quality = Quality.UNCERTAIN if code.is_uncertain() else Quality.BAD
        if (spec.valid_min is not None and value < spec.valid_min) or (spec.valid_max is not None and value > spec.valid_max):
            quality = Quality.BAD
        ts = data.SourceTimestamp or data.ServerTimestamp or self.clock.now()
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        self._delivery.pending.readings.append(Reading(device.config.id, binding.point, value, spec.unit, ts, quality))
        device.readings += 1
        device.last_value_at = ts
        device.last_point = binding.point
        device.last_value = value

    def _device_offline(self, device: _Device, error: str) -> None:
        device.last_error = error
        self._delivery.pending.statuses.append(device.availability.down(self.clock.now(), error))
        self._delivery.wake()

    def _lost(self, error: str) -> None:
        if self.last_error is None:
            log.warning("%s: %s", self.name, error)
        self.last_error = error
        for device in self.devices.values():
            self._device_offline(device, f"OPC-UA session: {error}")

    # ------------------------------------------------------------------ for the panel

    @property
    def stats(self) -> dict[str, Any]:
        return {
            "bus": self.bus.id,
            "kind": self.bus.kind,
            "endpoint": self.bus.endpoint,
            "connected": self.connected,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "last_error": self.last_error,
            "mode": self.mode_in_use,
            "deadband_items": self.deadband_items,
            "plain_items": self.plain_items,
            "namespaces": self.namespace_index,
            "certificate": self.certificate.as_dict() if self.certificate else None,
            "sink_errors": self._delivery.sink_errors,
            "devices": {device_id: d.as_dict() for device_id, d in self.devices.items()},
        }


def build(bus: object, devices: list[DeviceConfig], config: EstateConfig) -> OpcUaSource:
    """Registry entry point: a source for one ``opcua`` bus; the client certificate lives beside the store."""
    if not isinstance(bus, OpcUaBusConfig):
        raise ConfigError(f"the OPC-UA driver cannot serve a bus of kind {getattr(bus, 'kind', type(bus).__name__)!r}")
    folder, uri = client_identity(bus, config)
    return OpcUaSource(bus, devices, certificate_dir=folder, application_uri=uri)


def client_identity(bus: OpcUaBusConfig, config: EstateConfig) -> tuple[Path, str]:
    """Where the client certificate lives (``<store folder>/opcua``) and the application URI it names."""
    store_path = config.store.path
    folder = Path(store_path).parent / "opcua" if store_path else Path("opcua")
    return folder, f"urn:estate-edge:{config.estate.gateway_id}:{bus.id}"
