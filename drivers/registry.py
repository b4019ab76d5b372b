"""Every bus kind in one table: its config model, the builder of its source and its test read.

One ``SourceKind`` entry per ``kind`` (no import-time discovery): the supervisor builds sources
from it (``build_sources``, on start and on every reload), the panel's "test device" tool reads a
device through it (``drivers.probe``), and ``check`` and reloads validate against the same config
models (``edge.config.buses``, whose ``device_options`` say what a device on that kind may set). A
test keeps this table, the config union and ``BUS_MODELS`` equal, so a kind cannot be half added.
Cameras are not here: a camera source joins acquisition (``drivers.camera``) to the vision stage,
which only the app layer may import (``edge.cameras``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from edge.config import EstateConfig
from edge.config.buses import (
    BleBusConfig,
    Cjt188BusConfig,
    Dlt645BusConfig,
    Gb26875BusConfig,
    ModbusRtuBusConfig,
    ModbusTcpBusConfig,
    MqttBusConfig,
    OpcUaBusConfig,
    SyntheticBusConfig,
)
from edge.config.common import Section
from edge.config.devices import DeviceConfig
from edge.errors import ConfigError
from edge.probes import DeviceProbe
from edge.sources import CounterSpec, Source

SourceFactory = Callable[[Any, list[DeviceConfig], EstateConfig], Source]
# One read of one device: (config, bus, device, running sources whose links a probe may borrow).
DeviceProber = Callable[[EstateConfig, Any, DeviceConfig, Sequence[object]], Awaitable[DeviceProbe]]


@dataclass(frozen=True, slots=True)
class SourceKind:
    """One bus kind: how it is configured, how its source is built, how one of its devices is test-read."""

    config: type[Section]
    build: SourceFactory
    probe: DeviceProber


@cache
def kinds() -> dict[str, SourceKind]:
    """The table.

    Drivers are imported here, not at module import, so one protocol's missing optional dependency never
    breaks the others (nor the config check, which needs none of them).
    """
    from drivers.ble.driver import build as ble
    from drivers.ble.probe import probe_ble_device
    from drivers.cjt188.source import build as cjt188
    from drivers.dlt645.probe import probe_meter_device
    from drivers.dlt645.source import build as dlt645
    from drivers.gb26875.source import build as gb26875
    from drivers.gb26875.source import probe_panel_device
    from drivers.modbus.driver import build as modbus
    from drivers.modbus.probe import probe_modbus_device
    from drivers.mqtt.driver import build as mqtt
    from drivers.mqtt.probe import probe_mqtt_device
    from drivers.opcua.driver import build as opcua
    from drivers.opcua.driver import client_identity
    from drivers.opcua.probe import probe_opcua_device
    from drivers.synthetic.driver import build as synthetic
    from drivers.synthetic.driver import probe_synthetic_device

    async def modbus_probe(config: EstateConfig, bus: Any, device: DeviceConfig, running: Sequence[object]) -> DeviceProbe:
        return await probe_modbus_device(config, bus, device, running)

    async def meter_probe(config: EstateConfig, bus: Any, device: DeviceConfig, running: Sequence[object]) -> DeviceProbe:
        return await probe_meter_device(bus, device, running)

    async def panel_probe(config: EstateConfig, bus: Any, device: DeviceConfig, running: Sequence[object]) -> DeviceProbe:
        return probe_panel_device(bus, device, running)

    async def mqtt_probe(config: EstateConfig, bus: Any, device: DeviceConfig, running: Sequence[object]) -> DeviceProbe:
        return await probe_mqtt_device(bus, device, running)

    async def opcua_probe(config: EstateConfig, bus: Any, device: DeviceConfig, running: Sequence[object]) -> DeviceProbe:
        folder, uri = client_identity(bus, config)
        return await probe_opcua_device(bus, device, certificate_dir=folder, application_uri=uri)

    async def ble_probe(config: EstateConfig, bus: Any, device: DeviceConfig, running: Sequence[object]) -> DeviceProbe:
        return probe_ble_device(bus, device, running)

    async def synthetic_probe(config: EstateConfig, bus: Any, device: DeviceConfig,
                              running: Sequence[object]) -> DeviceProbe:
        return probe_synthetic_device(config, bus, device)

    return {
        "synthetic": SourceKind(SyntheticBusConfig, synthetic, synthetic_probe),
        "modbus_tcp": SourceKind(ModbusTcpBusConfig, modbus, modbus_probe),
        "modbus_rtu": SourceKind(ModbusRtuBusConfig, modbus, modbus_probe),
        "mqtt": SourceKind(MqttBusConfig, mqtt, mqtt_probe),
        "opcua": SourceKind(OpcUaBusConfig, opcua, opcua_probe),
        "ble": SourceKind(BleBusConfig, ble, ble_probe),
        "dlt645": SourceKind(Dlt645BusConfig, dlt645, meter_probe),
        "cjt188": SourceKind(Cjt188BusConfig, cjt188, meter_probe),
        "gb26875": SourceKind(Gb26875BusConfig, gb26875, panel_probe),
    }


def build_sources(config: EstateConfig) -> list[Source]:
    """One source per enabled bus, with the enabled devices attached to it."""
    table = kinds()
    sources: list[Source] = []
    for bus in config.buses:
        devices = [d for d in config.devices if d.bus == bus.id and d.enabled]
        sources.append(table[bus.kind].build(bus, devices, config))
    return sources


def counter_specs(config: EstateConfig) -> dict[tuple[str, str], CounterSpec]:
    """What the drivers know of each counter point (rollover, plausible rate), device overrides applied.

    The normaliser cannot know a register's width or a meter's rating; the profiles do. A bus kind
    without profiles contributes nothing, and its counters fall back to the normaliser's defaults.
    """
    from drivers.modbus.profile import ProfileLibrary

    specs: dict[tuple[str, str], CounterSpec] = {}
    libraries: dict[str | None, ProfileLibrary] = {}
    for bus in config.buses:
        if bus.kind not in ("modbus_tcp", "modbus_rtu"):
            continue
        folder = getattr(bus, "profiles_dir", None)
        library = libraries.get(folder) or libraries.setdefault(folder, ProfileLibrary([folder] if folder else []))
        for device in config.devices:
            if device.bus != bus.id or not device.enabled or not device.profile:
                continue
            try:
                profile = library.get(device.profile)
            except ConfigError:
                continue  # reported where the source is built
            for point, spec in profile.counter_specs().items():
                specs[(device.id, point)] = spec
    for device in config.devices:
        for point, limits in device.counters.items():
            base = specs.get((device.id, point), CounterSpec())
            specs[(device.id, point)] = CounterSpec(
                limits.rollover if limits.rollover is not None else base.rollover,
                limits.max_rate_per_s if limits.max_rate_per_s is not None else base.max_rate_per_s,
            )
    return specs
