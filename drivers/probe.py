"""One read of one configured device, for the panel's "test device" tool.

Dispatches on the device's bus kind to the protocol's own probe; a protocol without one says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from edge.config import EstateConfig
from edge.probes import DeviceProbe


async def probe_device(config: EstateConfig, device_id: str, running_sources: Sequence[object] = ()) -> DeviceProbe:
    """One read of ``device_id``; ``running_sources`` are the daemon's, whose links a probe may borrow."""
    device = config.device(device_id)
    if device is None:
        return DeviceProbe(device_id, ok=False, error=f"no device {device_id!r} in the config")
    bus = next(b for b in config.buses if b.id == device.bus)
    if bus.kind in ("modbus_tcp", "modbus_rtu"):
        from drivers.modbus.probe import probe_modbus_device

        return await probe_modbus_device(config, bus, device, running_sources)
    if bus.kind in ("dlt645", "cjt188"):
        from drivers.dlt645.probe import probe_meter_device

        return await probe_meter_device(bus, device, running_sources)  # type: ignore[arg-type]
    if bus.kind == "gb26875":
        from drivers.gb26875.source import probe_panel_device

        return probe_panel_device(bus, device, running_sources)  # type: ignore[arg-type]
    if bus.kind == "mqtt":
        from drivers.mqtt.probe import probe_mqtt_device

        return await probe_mqtt_device(bus, device, running_sources)  # type: ignore[arg-type]
    if bus.kind == "opcua":
        from drivers.opcua.driver import client_identity
        from drivers.opcua.probe import probe_opcua_device

        folder, uri = client_identity(bus, config)  # type: ignore[arg-type]
        return await probe_opcua_device(bus, device, certificate_dir=folder, application_uri=uri)  # type: ignore[arg-type]
    if bus.kind == "ble":
        from drivers.ble.probe import probe_ble_device

        return probe_ble_device(bus, device, running_sources)  # type: ignore[arg-type]
    if bus.kind == "synthetic":
        from drivers.synthetic.driver import SyntheticSource

        readings = SyntheticSource(bus, [device], config).sample(device, device.poll_interval_s)  # type: ignore[arg-type]
        from edge.probes import ProbeValue

        return DeviceProbe(device_id, ok=True, values=tuple(ProbeValue(r.point, r.value, r.unit) for r in readings))
    return DeviceProbe(device_id, ok=False, error=f"bus kind {bus.kind!r} has no test read")
