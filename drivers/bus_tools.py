"""The installer tools for MQTT, BLE and OPC-UA buses, answered from the running gateway's config and sources.

``DriverBusTools`` implements ``edge.bus_tools.BusTools`` for the panel: it is handed two
callables (the running config, the running sources) rather than the gateway, so it follows a
reload without being rebuilt and can be driven by tests without a daemon.

* MQTT listen: a short-lived client of its own (``drivers.mqtt.listen``), never the source's session;
* BLE scan: the running source's scan list (one scanner per adapter; a second discovery on the same
  adapter would fail or steal advertisements), marked when the bus replays a recording;
* OPC-UA browse: a session of its own with the bus's security settings and client certificate,
  answering namespace-independent node ids (``drivers.opcua.browse``);
* last messages: what each MQTT, BLE and OPC-UA device last sent, for the devices page.
"""

from __future__ import annotations

import base64
import textwrap
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from edge.bus_tools import BrowseNode, BrowseResult, BusInfo, ClientCertificate, LastMessage, ListenResult, ScanEntry, ScanList
from edge.clock import to_us
from edge.config import EstateConfig
from edge.config.buses import BleBusConfig, MqttBusConfig, OpcUaBusConfig

_Bus = TypeVar("_Bus", MqttBusConfig, BleBusConfig, OpcUaBusConfig)

MAX_BROWSE_DEPTH = 6
MAX_BROWSE_NODES = 2000
VALUE_TEXT_MAX = 80


class DriverBusTools:
    """``config()`` is the running config (None before the first load); ``sources()`` the running sources."""

    def __init__(self, config: Callable[[], EstateConfig | None], sources: Callable[[], Sequence[object]]) -> None:
        self._config = config
        self._sources = sources

    def _bus(self, bus_id: str, model: type[_Bus]) -> _Bus | None:
        config = self._config()
        if config is None:
            return None
        return next((b for b in config.buses if isinstance(b, model) and b.id == bus_id), None)

    def buses(self) -> list[BusInfo]:
        config = self._config()
        out: list[BusInfo] = []
        for bus in config.buses if config else []:
            if isinstance(bus, MqttBusConfig):
                out.append(BusInfo(bus.id, "mqtt", f"{bus.host}:{bus.port}"))
            elif isinstance(bus, BleBusConfig):
                out.append(BusInfo(bus.id, "ble", bus.adapter, bus.replay.name if bus.replay else None))
            elif isinstance(bus, OpcUaBusConfig):
                out.append(BusInfo(bus.id, "opcua", bus.endpoint))
        return out

    async def mqtt_listen(self, bus_id: str, topic_filter: str, seconds: float, max_messages: int) -> ListenResult:
        from drivers.mqtt.listen import listen

        bus = self._bus(bus_id, MqttBusConfig)
        if bus is None:
            return ListenResult(bus_id, topic_filter, error="no_bus", detail=bus_id)
        return await listen(bus, topic_filter, seconds=seconds, max_messages=max_messages)

    def ble_scan(self) -> list[ScanList]:
        from drivers.ble.driver import BleSource

        out: list[ScanList] = []
        for info in self.buses():
            if info.kind != "ble":
                continue
            source = next((s for s in self._sources() if isinstance(s, BleSource) and s.bus.id == info.id), None)
            if source is None:
                out.append(ScanList(info.id, info.address, False, info.replay, error="not_running", detail=info.id))
                continue
            entries = tuple(ScanEntry(
                address=e["address"], name=e.get("name"), rssi=int(e["rssi"]), last_seen_us=_us(e.get("last_seen")),
                count=int(e["count"]), format=e.get("format"), device_id=e.get("device_id"), error=e.get("error"),
            ) for e in source.stats["scan_list"])
            error = "unreachable" if source.last_error else None
            out.append(ScanList(info.id, info.address, bool(source.scanning), info.replay, entries, error,
                                source.last_error))
        return out

    async def opcua_browse(self, bus_id: str, root: str, max_depth: int, max_nodes: int) -> BrowseResult:
        from asyncua import ua

        from drivers.opcua.browse import browse
        from drivers.opcua.driver import OpcUaSource, client_identity
        from drivers.opcua.nodeid import NodeIdError, parse_node_ref

        started = time.perf_counter()
        bus = self._bus(bus_id, OpcUaBusConfig)
        config = self._config()
        if bus is None or config is None:
            return BrowseResult(bus_id, root, error="no_bus", detail=bus_id)
        root = root.strip() or "i=85"
        try:
            parse_node_ref(root)
        except NodeIdError as exc:
            return BrowseResult(bus_id, root, error="bad_node", detail=str(exc))
        max_depth = max(1, min(MAX_BROWSE_DEPTH, max_depth))
        max_nodes = max(1, min(MAX_BROWSE_NODES, max_nodes))
        folder, uri = client_identity(bus, config)
        try:
            client = await OpcUaSource(bus, [], certificate_dir=folder, application_uri=uri).new_client()
            async with client:
                entries = await browse(bus.endpoint, root=root, max_depth=max_depth, max_nodes=max_nodes, client=client)
        except NodeIdError as exc:
            return BrowseResult(bus_id, root, error="bad_node", detail=str(exc), duration_ms=_ms(started))
        except ua.UaStatusCodeError as exc:
            code = "bad_node" if exc.code in (ua.StatusCodes.BadNodeIdUnknown, ua.StatusCodes.BadNodeIdInvalid) else "failed"
            return BrowseResult(bus_id, root, error=code, detail=f"{bus.endpoint}: {exc}", duration_ms=_ms(started))
        except (OSError, TimeoutError, ConnectionError, ua.UaError) as exc:
            return BrowseResult(bus_id, root, error="unreachable", detail=f"{bus.endpoint}: {type(exc).__name__}: {exc}",
                                duration_ms=_ms(started))
        nodes = tuple(BrowseNode(e.node_id, e.path, e.node_class, e.data_type, _value_text(e.value)) for e in entries)
        return BrowseResult(bus_id, root, nodes, len(nodes) >= max_nodes, _ms(started))

    async def opcua_certificate(self, bus_id: str) -> ClientCertificate:
        """The client certificate the bus's sessions present, made now if the bus never connected yet.

        An integrator adds it to the PLC's trust list before the first connection can succeed, so the
        panel must be able to show it then; it is the very file the source uses (same folder and
        application URI), so trusting it is enough.
        """
        from drivers.opcua.driver import OpcUaSource, client_identity
        from drivers.opcua.security import ensure_client_certificate

        bus = self._bus(bus_id, OpcUaBusConfig)
        config = self._config()
        if bus is None or config is None:
            return ClientCertificate(bus_id, error="no_bus", detail=bus_id)
        folder, uri = client_identity(bus, config)
        folder = OpcUaSource(bus, [], certificate_dir=folder, application_uri=uri).certificate_dir
        try:
            info = await ensure_client_certificate(folder, uri)
            der = info.cert_file.read_bytes()
        except (OSError, ValueError) as exc:
            return ClientCertificate(bus_id, error="failed", detail=f"{folder}: {type(exc).__name__}: {exc}")
        body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
        pem = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
        return ClientCertificate(bus_id, info.application_uri, info.subject, info.thumbprint_sha1, info.not_after, pem)

    def last_messages(self) -> dict[str, LastMessage]:
        from drivers.ble.driver import BleSource
        from drivers.mqtt.driver import MqttSource
        from drivers.mqtt.listen import preview
        from drivers.opcua.driver import OpcUaSource

        out: dict[str, LastMessage] = {}
        for source in self._sources():
            if isinstance(source, MqttSource):
                for device_id, d in source.devices.items():
                    if d.last_topic is not None:
                        out[device_id] = LastMessage(device_id, "mqtt", _us(d.last_heard_at), d.last_topic,
                                                     preview(d.last_payload or b""))
            elif isinstance(source, BleSource):
                replay = getattr(source.bus, "replay", None) is not None
                for device_id, s in source.sensors.items():
                    entry = source.scan_list.get(s.mac)
                    if entry is not None and s.advertisements:
                        out[device_id] = LastMessage(device_id, "ble", _us(entry.get("last_seen")), s.last_format or "",
                                                     ", ".join(f"{p}={v:g}" for p, v in s.last_values), replay, s.rssi)
            elif isinstance(source, OpcUaSource):
                for device_id, o in source.devices.items():
                    if o.last_point is not None:
                        out[device_id] = LastMessage(device_id, "opcua", _us(o.last_value_at), str(o.refs[o.last_point]),
                                                     f"{o.last_point}={o.last_value:g}")
        return out


def _us(value: datetime | str | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    return to_us(value)


def _value_text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= VALUE_TEXT_MAX else text[:VALUE_TEXT_MAX - 1] + "…"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
