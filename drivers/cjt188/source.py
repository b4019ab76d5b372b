"""The CJ/T 188 source: one per ``cjt188`` bus; a ``MeterLineSource`` (see ``drivers.dlt645.source``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drivers.cjt188 import codec
from drivers.cjt188.device import MeterPoller
from drivers.cjt188.profile import load_profile
from drivers.dlt645.source import MeterLineSource
from edge.config import EstateConfig
from edge.config.buses import Cjt188BusConfig
from edge.config.devices import DeviceConfig
from edge.errors import ConfigError


def _poller(device: DeviceConfig, dirs: tuple[str, ...]) -> MeterPoller:
    return MeterPoller(device, load_profile(device.profile or "", dirs))


class Cjt188Source(MeterLineSource):
    """Water, heat and gas meters on one RS-485 / M-Bus line."""

    protocol = "cjt188"
    scanner = staticmethod(codec.scan_frame)

    def __init__(self, bus: Cjt188BusConfig, devices: Sequence[DeviceConfig], **kwargs: Any) -> None:
        super().__init__(bus, devices, _poller, **kwargs)


def build(bus: object, devices: list[DeviceConfig], config: EstateConfig) -> Cjt188Source:
    """Registry entry point for a ``cjt188`` bus."""
    if not isinstance(bus, Cjt188BusConfig):
        raise ConfigError(f"the CJ/T 188 driver cannot serve a bus of kind {getattr(bus, 'kind', type(bus).__name__)!r}")
    return Cjt188Source(bus, devices, offline_after=config.thresholds.offline_after_failures,
                        online_after=config.thresholds.online_after_successes)
