"""Which source serves which bus kind: an explicit table, no import-time discovery.

Each protocol package contributes a ``build(bus, devices, config) -> Source`` function; the
supervisor calls ``build_sources`` on start and on every reload. Adding a protocol means adding
one config model to ``edge.config.buses`` and one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from edge.config import EstateConfig
from edge.config.devices import DeviceConfig
from edge.errors import ConfigError
from edge.sources import CounterSpec, Source

SourceFactory = Callable[[object, list[DeviceConfig], EstateConfig], Source]


def _factories() -> dict[str, SourceFactory]:
    # Imported lazily so a missing optional dependency of one protocol never breaks the others.
    from drivers.ble.driver import build as ble
    from drivers.cjt188.source import build as cjt188
    from drivers.dlt645.source import build as dlt645
    from drivers.gb26875.source import build as gb26875
    from drivers.modbus.driver import build as modbus
    from drivers.mqtt.driver import build as mqtt
    from drivers.opcua.driver import build as opcua
    from drivers.synthetic.driver import build as synthetic

    return {
        "synthetic": synthetic,
        "modbus_tcp": modbus,
        "modbus_rtu": modbus,
        "mqtt": mqtt,
        "opcua": opcua,
        "ble": ble,
        "dlt645": dlt645,
        "cjt188": cjt188,
        "gb26875": gb26875,
    }


def build_sources(config: EstateConfig) -> list[Source]:
    """One source per enabled bus, with the enabled devices attached to it."""
    factories = _factories()
    sources: list[Source] = []
    for bus in config.buses:
        devices = [d for d in config.devices if d.bus == bus.id and d.enabled]
        sources.append(factories[bus.kind](bus, devices, config))
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
