"""Buses and sources: how devices are reached. One entry per physical bus or connection.

A discriminated union on ``kind``: each protocol contributes one model here, and the driver
registry (``drivers.registry``) maps the same ``kind`` to the source that serves it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal, get_args

from pydantic import Field, SecretStr, model_validator

from edge.config.common import Identifier, Section
from edge.config.device_options import (
    BleDeviceOptions,
    Cjt188DeviceOptions,
    DeviceOptions,
    Dlt645DeviceOptions,
    Gb26875DeviceOptions,
    ModbusRtuDeviceOptions,
    ModbusTcpDeviceOptions,
    MqttDeviceOptions,
    OpcUaDeviceOptions,
    SyntheticDeviceOptions,
)


class BusSection(Section):
    """What every bus model has beside its fields: the model its devices' ``options:`` are checked against."""

    device_options: ClassVar[type[DeviceOptions]]


class SyntheticBusConfig(BusSection):
    """A built-in generator of plausible readings, for demos and soak tests without hardware."""

    kind: Literal["synthetic"]
    device_options: ClassVar[type[DeviceOptions]] = SyntheticDeviceOptions  # what its devices' options: may hold
    id: Identifier
    seed: int = Field(0, description="Random seed, so a demo run is repeatable.")
    fail_devices: list[str] = Field(default_factory=list, description="Device ids that never answer.")


class _ModbusBusCommon(BusSection):
    """Settings every Modbus bus shares: read planning, backoff, overload reporting, profiles."""

    max_gap_registers: int = Field(
        16, ge=0, le=124,
        description="Unused registers a merged read may bridge between two points (0: merge touching points only).",
    )
    max_registers_per_read: int | None = Field(
        None, ge=1, le=125, description="Cap on registers per request for every device here (default: each profile's)."
    )
    backoff_max_s: float = Field(
        120.0, gt=0, le=3600, description="Longest wait between retries of an offline device, seconds."
    )
    overload_clear_s: float = Field(
        60.0, gt=0, le=3600, description="An overload alarm clears after this many seconds without a skipped cycle."
    )
    profiles_dir: str | None = Field(
        None, description="Extra directory of device profiles (YAML), searched before the shipped ones."
    )


class ModbusTcpBusConfig(_ModbusBusCommon):
    """Modbus TCP: meters with an Ethernet port, or RS-485 lines behind serial-to-Ethernet converters.

    Devices are polled concurrently; each host:port gets at most ``max_connections`` connections
    (a converter typically accepts one to four). A device may name another host or port in its
    ``options`` (``host``, ``port``), so one bus can cover a whole network segment.
    """

    kind: Literal["modbus_tcp"]
    device_options: ClassVar[type[DeviceOptions]] = ModbusTcpDeviceOptions  # what its devices' options: may hold
    id: Identifier
    host: str = Field(min_length=1, description="Default host name or IP address.")
    port: int = Field(502, ge=1, le=65535, description="Default TCP port.")
    max_connections: int = Field(1, ge=1, le=64, description="Connections per host:port at once.")
    connect_timeout_s: float = Field(3.0, gt=0, le=60, description="Seconds to wait for a TCP connection.")


class ModbusRtuBusConfig(_ModbusBusCommon):
    """Modbus RTU on one RS-485 line: one transaction at a time, frames separated by 3.5 characters of silence."""

    kind: Literal["modbus_rtu"]
    device_options: ClassVar[type[DeviceOptions]] = ModbusRtuDeviceOptions  # what its devices' options: may hold
    id: Identifier
    port: str = Field(min_length=1, description="Serial device, e.g. /dev/ttyUSB0 (or a pseudo-terminal).")
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = Field(9600, description="Bits per second.")
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = Field("N", description="N none, E even, O odd.")
    stopbits: Literal[1, 2] = 1
    inter_frame_s: float | None = Field(
        None, ge=0, le=1, description="Silence before each request, seconds (default t3.5 for the baud rate)."
    )
    shared_line: bool = Field(
        False, description="The installer confirms this port is one physical line shared with DL/T 645 or CJ/T 188 "
        "meter buses: the gateway then takes turns on one port object with them (each bus at its own baud rate "
        "and parity); `check` warns when their settings differ."
    )


class MqttBusConfig(BusSection):
    """An MQTT broker that devices publish through (an operator's NB-IoT / LoRa platform, lift or charging boxes).

    Each device names its profile and base topic (``options.topic``); the source subscribes to the
    profiles' topics below it with QoS 1 in a persistent session (``clean_session`` false and a
    fixed client id), so the broker keeps messages while the gateway is away. Messages are
    acknowledged only after their readings are committed to the store.
    """

    kind: Literal["mqtt"]
    device_options: ClassVar[type[DeviceOptions]] = MqttDeviceOptions  # what its devices' options: may hold
    id: Identifier
    host: str = Field(min_length=1, description="Broker host name or IP address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 for TLS).")
    client_id: str | None = Field(
        None, max_length=128, description="MQTT client id (keeps the persistent session); default estate-edge-<gateway>-<bus>."
    )
    username: str | None = Field(None, description="Broker user name.")
    password: SecretStr | None = Field(None, description="Broker password; give as `!secret name`.")
    tls: bool = Field(False, description="Connect with TLS; the broker certificate is always verified.")
    ca_file: Path | None = Field(None, description="PEM bundle of the broker's CA (default: the system's).")
    cert_file: Path | None = Field(None, description="PEM client certificate (brokers that authenticate by certificate).")
    key_file: Path | None = Field(None, description="PEM private key of the client certificate.")
    qos: Literal[0, 1] = Field(1, description="Subscription QoS; 1 with a persistent session loses nothing while away.")
    persistent_session: bool = Field(True, description="Ask the broker to keep the session (clean_session false).")
    keepalive_s: int = Field(60, ge=5, le=3600, description="MQTT keep-alive, seconds.")
    connect_timeout_s: float = Field(10.0, gt=0, le=120, description="Seconds to wait for the broker's CONNACK.")
    offline_after_s: float = Field(
        900.0, gt=0, le=7 * 86400, description="A device is offline after this many seconds without a message (default)."
    )
    backoff_initial_s: float = Field(1.0, gt=0, le=600, description="First reconnect wait, seconds (doubled each try, jittered).")
    backoff_max_s: float = Field(60.0, gt=0, le=3600, description="Longest reconnect wait, seconds.")
    max_payload_bytes: int = Field(
        65536, ge=64, le=16 * 1024 * 1024, description="Larger payloads are parked unread, bytes."
    )
    profiles_dir: str | None = Field(None, description="Extra directory of MQTT device profiles (YAML).")

    @model_validator(mode="after")
    def _key_pair(self) -> MqttBusConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if (self.cert_file or self.ca_file) and not self.tls:
            raise ValueError("ca_file / cert_file need tls: true")
        return self


class _MeterLineCommon(BusSection):
    """One RS-485 line of DL/T 645 or CJ/T 188 meters (an M-Bus level converter carries the same bytes).

    Polled like a Modbus RTU line (``drivers.modbus.scheduler``): one transaction at a time, a
    silence between frames, one timeout per backoff step for a silent meter, overload reported.
    """

    port: str = Field(min_length=1, description="Serial device, e.g. /dev/ttyUSB1 (or a pseudo-terminal).")
    baudrate: Literal[1200, 2400, 4800, 9600, 19200] = Field(2400, description="Bits per second (grid meters: 2400).")
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = Field("E", description="N none, E even (both standards' default), O odd.")
    stopbits: Literal[1, 2] = 1
    inter_frame_s: float | None = Field(
        None, ge=0, le=1, description="Silence before each request, seconds (default 3.5 characters at the baud rate)."
    )
    backoff_max_s: float = Field(
        120.0, gt=0, le=3600, description="Longest wait between retries of an offline meter, seconds."
    )
    overload_clear_s: float = Field(
        60.0, gt=0, le=3600, description="An overload alarm clears after this many seconds without a skipped cycle."
    )
    profiles_dir: str | None = Field(None, description="Extra directory of meter profiles (YAML), searched first.")
    shared_line: bool = Field(
        False, description="The installer confirms this port is one physical line shared with another bus "
        "(e.g. Modbus devices beside DL/T 645 meters); `check` warns when their parities differ."
    )


class Dlt645BusConfig(_MeterLineCommon):
    """DL/T 645-2007 / -1997 electricity meters on one RS-485 line (``options.address``: 12 digits per meter)."""

    kind: Literal["dlt645"]
    device_options: ClassVar[type[DeviceOptions]] = Dlt645DeviceOptions  # what its devices' options: may hold
    id: Identifier
    time_sync: bool = Field(False, description="Broadcast the gateway's time to the meters (DL/T 645-2007 0x08).")
    time_sync_interval_s: float = Field(86400.0, ge=60, le=7 * 86400, description="Seconds between time broadcasts.")


class Cjt188BusConfig(_MeterLineCommon):
    """CJ/T 188-2004 water, heat and gas meters on one RS-485 / M-Bus line (``options.address``: 14 digits)."""

    kind: Literal["cjt188"]
    device_options: ClassVar[type[DeviceOptions]] = Cjt188DeviceOptions  # what its devices' options: may hold
    id: Identifier


class Gb26875BusConfig(BusSection):
    """A GB/T 26875.3 listener: user information transmission devices of fire-alarm panels connect to it.

    Each device on this bus is either a transmission device (``options.address``: its 6-byte
    source address, e.g. 0x1d6dd53c10ac) or one component of a panel behind it (``options.uitd``:
    the transmission device's id, ``options.component``: "<system address>-<component address>").
    """

    kind: Literal["gb26875"]
    device_options: ClassVar[type[DeviceOptions]] = Gb26875DeviceOptions  # what its devices' options: may hold
    id: Identifier
    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 for every interface).")
    port: int = Field(9026, ge=0, le=65535, description="TCP port to listen on (0: any free port, for tests).")
    address: int = Field(0, ge=0, lt=2**48, description="Our own 6-byte centre address in the frames we send.")
    idle_timeout_s: float = Field(
        120.0, gt=0, le=3600, description="A connection silent this long is dropped and its device reported offline."
    )
    time_sync: bool = Field(True, description="Set the device's clock (control, type 90) when it connects.")
    max_connections: int = Field(64, ge=1, le=1024, description="Connections accepted at once.")


class OpcUaBusConfig(BusSection):
    """An OPC-UA server: the PLC of a pump room or heat-exchange station (one session per bus).

    Devices name a profile (their points as namespace-independent node ids, ``nsu=<uri>;s=...``)
    and options such as ``prefix`` (filled into the profile's node ids). Values arrive by
    subscription (with an absolute deadband where the server supports it) or, where it does not,
    by polling at the device's ``poll_interval_s``. With ``security_policy: Basic256Sha256`` the
    gateway makes itself a self-signed client certificate on first use (in ``certificate_dir``,
    default ``<store folder>/opcua``); add it to the server's trust list.
    """

    kind: Literal["opcua"]
    device_options: ClassVar[type[DeviceOptions]] = OpcUaDeviceOptions  # what its devices' options: may hold
    id: Identifier
    endpoint: str = Field(pattern=r"^opc\.tcp://", description="Server endpoint, e.g. opc.tcp://10.0.5.20:4840.")
    security_policy: Literal["None", "Basic256Sha256"] = Field("None", description="Security policy of the channel.")
    security_mode: Literal["Sign", "SignAndEncrypt"] = Field("SignAndEncrypt", description="Message security mode.")
    certificate_dir: Path | None = Field(None, description="Where the client certificate is kept (default <store folder>/opcua).")
    server_certificate: Path | None = Field(
        None, description="The server's certificate (DER or PEM) to pin; default: taken from its endpoint list."
    )
    username: str | None = Field(None, description="User name, for servers with user authentication.")
    password: SecretStr | None = Field(None, description="Password; give as `!secret name`.")
    mode: Literal["auto", "subscribe", "poll"] = Field(
        "auto", description="auto: subscribe, and poll where the server refuses subscriptions."
    )
    timeout_s: float = Field(5.0, gt=0, le=120, description="Seconds to wait for one request.")
    backoff_initial_s: float = Field(1.0, gt=0, le=600, description="First reconnect wait, seconds (doubled, jittered).")
    backoff_max_s: float = Field(60.0, gt=0, le=3600, description="Longest reconnect wait, seconds.")
    profiles_dir: str | None = Field(None, description="Extra directory of OPC-UA device profiles (YAML).")


class BleBusConfig(BusSection):
    """One Bluetooth LE adapter scanning passively for sensor advertisements (pump rooms, switch rooms).

    One scanner per adapter; devices are matched by MAC (``options.mac``) and decoded by format
    (BTHome v2, the pvvx / ATC1441 custom firmware of the Xiaomi LYWSD03MMC). Nothing connects to
    the sensors: they keep their battery life, and any number of gateways may listen.
    """

    kind: Literal["ble"]
    device_options: ClassVar[type[DeviceOptions]] = BleDeviceOptions  # what its devices' options: may hold
    id: Identifier
    adapter: str = Field("hci0", pattern=r"^hci\d{1,2}$", description="Bluetooth adapter, e.g. hci0.")
    scanning_mode: Literal["passive", "active"] = Field(
        "passive", description="passive: listen only (BlueZ advertisement monitor); active: also send scan requests."
    )
    offline_after_s: float = Field(
        900.0, gt=0, le=86400, description="A sensor is offline after this many seconds without an advertisement."
    )
    min_interval_s: float = Field(
        10.0, ge=0, le=3600, description="At most one set of readings per sensor this often when nothing changed."
    )
    replay: Path | None = Field(
        None, description="Replay this recording of advertisements (JSON lines, as in simulators/ble/recordings) "
        "instead of scanning the adapter, in a loop at the recorded pace: for the demo, or a capture taken on site. "
        "The panel marks the bus and its devices as a replay."
    )


BusConfig = Annotated[
    SyntheticBusConfig | ModbusTcpBusConfig | ModbusRtuBusConfig | MqttBusConfig | OpcUaBusConfig | BleBusConfig
    | Dlt645BusConfig | Cjt188BusConfig | Gb26875BusConfig,
    Field(discriminator="kind"),
]

# Every bus model, for tables keyed by kind (a test keeps it equal to the union above).
BUS_MODELS: tuple[type[BusSection], ...] = (
    SyntheticBusConfig, ModbusTcpBusConfig, ModbusRtuBusConfig, MqttBusConfig, OpcUaBusConfig, BleBusConfig,
    Dlt645BusConfig, Cjt188BusConfig, Gb26875BusConfig,
)


def bus_kind(model: type[BusSection]) -> str:
    """The ``kind`` a bus model answers to (its ``Literal``)."""
    return str(get_args(model.model_fields["kind"].annotation)[0])


DEVICE_OPTIONS: dict[str, type[DeviceOptions]] = {
    bus_kind(model): model.device_options for model in BUS_MODELS
}


SERIAL_KINDS = ("modbus_rtu", "dlt645", "cjt188")


def shared_line_report(buses: list[object]) -> tuple[list[str], list[str]]:
    """(problems, warnings) about serial buses that name the same port (``estate-edge check`` prints them).

    Two buses on one port are one physical line only if the installer says so: ``shared_line: true``
    on each of them. They then share one port object and one lock (``drivers.serial_line``); a Modbus
    RTU bus among them drives the port through that object instead of its own pymodbus client
    (``drivers.modbus.shared_line``). Sharing buses with different baud rate, parity or stop bits is
    allowed (the port is switched per transaction) but warned about: a device that sees frames in
    another parity counts them as line errors, and some meters stop answering for a while.
    """
    by_port: dict[str, list[object]] = {}
    for bus in buses:
        if getattr(bus, "kind", None) in SERIAL_KINDS and getattr(bus, "enabled", True):
            by_port.setdefault(str(getattr(bus, "port", "")), []).append(bus)
    problems: list[str] = []
    warnings: list[str] = []
    for port, group in by_port.items():
        if len(group) < 2:
            continue
        ids = ", ".join(str(getattr(b, "id", "?")) for b in group)
        if not all(getattr(b, "shared_line", False) for b in group):
            unshared = ", ".join(str(getattr(b, "id", "?")) for b in group if not getattr(b, "shared_line", False))
            problems.append(f"buses {ids} all name port {port}: if this is one physical line, set "
                            f"shared_line: true on each of them (missing on {unshared}); otherwise give each "
                            "its own port")
            continue
        settings = {f"{getattr(b, 'baudrate', '?')} {getattr(b, 'bytesize', 8)}{getattr(b, 'parity', '?')}"
                    f"{getattr(b, 'stopbits', 1)}" for b in group}
        parities = {str(getattr(b, "parity", "?")) for b in group}
        if len(parities) > 1:
            each = ", ".join(f"{getattr(b, 'id', '?')} {getattr(b, 'parity', '?')}" for b in group)
            warnings.append(f"port {port} is shared by buses with mixed parity ({each}): devices that see frames "
                            "in another parity count them as line errors and some stop answering for a while; "
                            "set every device on the line to one parity where they allow it")
        elif len(settings) > 1:
            warnings.append(f"port {port} is shared by buses {ids} with different line settings "
                            f"({', '.join(sorted(settings))}): devices that see frames at another baud rate "
                            "count them as line errors; set them alike where the devices allow")
    return problems, warnings
