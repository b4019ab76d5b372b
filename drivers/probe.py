"""One read of one configured device, for the panel's "test device" tool.

Dispatches on the device's bus kind through the registry (``drivers.registry.kinds``), where each
kind names its own probe next to its builder and config model.
"""

from __future__ import annotations

from collections.abc import Sequence

from edge.config import EstateConfig
from edge.probes import DeviceProbe


async def probe_device(config: EstateConfig, device_id: str, running_sources: Sequence[object] = ()) -> DeviceProbe:
    """One read of ``device_id``; ``running_sources`` are the daemon's, whose links a probe may borrow."""
    from drivers.registry import kinds

    device = config.device(device_id)
    if device is None:
        return DeviceProbe(device_id, ok=False, error=f"no device {device_id!r} in the config")
    bus = next(b for b in config.buses if b.id == device.bus)
    return await kinds()[bus.kind].probe(config, bus, device, running_sources)
