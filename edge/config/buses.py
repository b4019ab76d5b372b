"""Buses and sources: how devices are reached. One entry per physical bus or connection.

A discriminated union on ``kind``: each protocol contributes one model here, and the driver
registry (``drivers.registry``) maps the same ``kind`` to the source that serves it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from edge.config.common import Identifier, Section


class SyntheticBusConfig(Section):
    """A built-in generator of plausible readings, for demos and soak tests without hardware."""

    kind: Literal["synthetic"]
    id: Identifier
    seed: int = Field(0, description="Random seed, so a demo run is repeatable.")
    fail_devices: list[str] = Field(default_factory=list, description="Device ids that never answer.")


class _ModbusBusCommon(Section):
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
    id: Identifier
    host: str = Field(min_length=1, description="Default host name or IP address.")
    port: int = Field(502, ge=1, le=65535, description="Default TCP port.")
    max_connections: int = Field(1, ge=1, le=64, description="Connections per host:port at once.")
    connect_timeout_s: float = Field(3.0, gt=0, le=60, description="Seconds to wait for a TCP connection.")


class ModbusRtuBusConfig(_ModbusBusCommon):
    """Modbus RTU on one RS-485 line: one transaction at a time, frames separated by 3.5 characters of silence."""

    kind: Literal["modbus_rtu"]
    id: Identifier
    port: str = Field(min_length=1, description="Serial device, e.g. /dev/ttyUSB0 (or a pseudo-terminal).")
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = Field(9600, description="Bits per second.")
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = Field("N", description="N none, E even, O odd.")
    stopbits: Literal[1, 2] = 1
    inter_frame_s: float | None = Field(
        None, ge=0, le=1, description="Silence before each request, seconds (default t3.5 for the baud rate)."
    )


BusConfig = Annotated[
    SyntheticBusConfig | ModbusTcpBusConfig | ModbusRtuBusConfig, Field(discriminator="kind")
]
