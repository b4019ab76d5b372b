"""Which source serves which bus kind: an explicit table, no import-time discovery.

Each protocol package contributes a ``build(bus, devices, config) -> Source`` function; the
supervisor calls ``build_sources`` on start and on every reload. Adding a protocol means adding
one config model to ``edge.config.buses`` and one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from edge.config import EstateConfig
from edge.config.devices import DeviceConfig
from edge.sources import Source

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
