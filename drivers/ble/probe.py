"""The BLE "test device" read: what the running scanner last heard from the sensor.

There is one scanner per adapter (BlueZ serves one discovery per adapter), so the probe does not
open a second one: it reports the running source's last decoded measurements, RSSI, format and
errors for the sensor, or says the bus is not running.
"""

from __future__ import annotations

from collections.abc import Sequence

from drivers.ble.driver import BleSource
from edge.config.buses import BleBusConfig
from edge.config.devices import DeviceConfig
from edge.probes import DeviceProbe, ProbeValue


def probe_ble_device(bus: BleBusConfig, device: DeviceConfig, running_sources: Sequence[object] = ()) -> DeviceProbe:
    source = next((s for s in running_sources if isinstance(s, BleSource) and s.bus.id == bus.id), None)
    if source is None or device.id not in source.sensors:
        return DeviceProbe(device.id, ok=False, error=f"BLE bus {bus.id} is not running: its scanner is the only listener")
    sensor = source.sensors[device.id]
    if sensor.advertisements == 0:
        return DeviceProbe(device.id, ok=False, error=f"nothing heard from {sensor.mac} yet"
                           + (f" ({sensor.last_error})" if sensor.last_error else ""))
    values = [ProbeValue(point, value) for point, value in sensor.last_values]
    values.append(ProbeValue("rssi_dbm", sensor.rssi, raw=f"{sensor.last_format} counter={sensor.counter}"))
    return DeviceProbe(device.id, ok=True, values=tuple(values), error=sensor.last_error)
