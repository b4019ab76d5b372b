"""What the installer tools for MQTT, BLE and OPC-UA buses answer: plain records, and the interface that answers.

Kernel types, like ``edge.probes``: the drivers build them (``drivers.bus_tools``) and the panel
renders them, so they live below both. Every result is a value, never an exception: a broker that
refuses, a bus that is not running or a node that does not exist comes back as ``error`` (a code
the panel translates from its catalogue) with ``detail`` (the technical text, shown as data).

Error codes (``error``):

    no_bus        the running config has no bus of that id and kind
    not_running   the bus exists but its source is not running (BLE: the scanner is the only listener)
    bad_filter    an MQTT topic filter that MQTT 3.1.1 section 4.7 refuses
    bad_node      an OPC-UA node id that is not in the namespace-independent form, or is unknown
    unreachable   the broker or server did not accept a connection (refused, TLS, login, timeout)
    failed        anything else the library raised
    busy          (the panel's) another listen or browse was running
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

ERROR_CODES: tuple[str, ...] = ("no_bus", "not_running", "bad_filter", "bad_node", "unreachable", "failed", "busy")


@dataclass(frozen=True, slots=True)
class BusInfo:
    """A bus the tools can work on; ``replay`` names the recording when a BLE bus replays instead of scanning."""

    id: str
    kind: str  # mqtt, ble, opcua
    address: str  # host:port, adapter, or endpoint
    replay: str | None = None


@dataclass(frozen=True, slots=True)
class HeardMessage:
    """One message the MQTT listen tool received: only a preview of its payload is kept (bounded memory)."""

    topic: str
    ts_us: int
    size: int
    preview: str  # the first bytes: text when they decode as UTF-8, else "hex:..."
    qos: int
    retained: bool


@dataclass(frozen=True, slots=True)
class ListenResult:
    bus_id: str
    topic_filter: str
    messages: tuple[HeardMessage, ...] = ()
    stopped_by: str = "time"  # time, count, error
    duration_ms: float = 0.0
    error: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class ScanEntry:
    """One advertiser the BLE scanner heard, configured or not."""

    address: str
    name: str | None
    rssi: int
    last_seen_us: int | None
    count: int
    format: str | None  # decoded format (bthome_v2, pvvx, atc1441) when the codec reads it
    device_id: str | None  # the configured device with this MAC
    error: str | None = None  # why its advertisement did not decode


@dataclass(frozen=True, slots=True)
class ScanList:
    bus_id: str
    adapter: str
    scanning: bool
    replay: str | None  # the recording replayed instead of the radio, or None
    entries: tuple[ScanEntry, ...] = ()
    error: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class BrowseNode:
    node_id: str  # namespace-independent (nsu=<uri>;s=...), as a profile takes it
    path: str
    node_class: str
    data_type: str | None
    value: str | None  # shown as text; None when unreadable or not a variable


@dataclass(frozen=True, slots=True)
class BrowseResult:
    bus_id: str
    root: str
    nodes: tuple[BrowseNode, ...] = ()
    truncated: bool = False
    duration_ms: float = 0.0
    error: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """The gateway's OPC-UA client certificate for one bus, for the PLC's trust list (made on first use)."""

    bus_id: str
    application_uri: str = ""
    subject: str = ""
    thumbprint_sha1: str = ""  # what PLC engineering tools show next to a trusted certificate
    not_after: str = ""
    pem: str = ""  # the certificate itself (public), to copy or download as DER
    error: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class LastMessage:
    """What a device last sent, for the devices page: protocol-specific text shown as data."""

    device_id: str
    kind: str  # mqtt, ble, opcua
    ts_us: int | None
    summary: str  # MQTT: the topic; BLE: the format and RSSI; OPC-UA: the point
    preview: str = ""  # MQTT: the payload's first bytes; OPC-UA: the value
    replay: bool = False  # the BLE bus replays a recording
    rssi: int | None = None  # BLE: signal strength of the last advertisement, dBm


class BusTools(Protocol):
    """The running gateway's answers to the installer tools (``drivers.bus_tools.DriverBusTools``)."""

    def buses(self) -> list[BusInfo]: ...

    async def mqtt_listen(self, bus_id: str, topic_filter: str, seconds: float, max_messages: int) -> ListenResult: ...

    def ble_scan(self) -> list[ScanList]: ...

    async def opcua_browse(self, bus_id: str, root: str, max_depth: int, max_nodes: int) -> BrowseResult: ...

    async def opcua_certificate(self, bus_id: str) -> ClientCertificate: ...

    def last_messages(self) -> dict[str, LastMessage]: ...
