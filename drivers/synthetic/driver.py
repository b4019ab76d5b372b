"""A synthetic device source: plausible readings behind the real driver interface.

For demos and soak tests without hardware. It honours each device's category and poll interval,
keeps energy and water counters monotonic, and reports configured ``fail_devices`` as offline,
so everything downstream (store, rules, indicators, uplink, panel) sees the same shapes a real
bus produces.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
from collections.abc import Sequence

from edge.availability import AvailabilityReporter
from edge.clock import Clock, SystemClock
from edge.config import EstateConfig
from edge.config.buses import SyntheticBusConfig
from edge.config.devices import DeviceConfig
from edge.probes import DeviceProbe, ProbeValue
from edge.records import Reading
from edge.sources import Sink

# point name, unit, base value, daily amplitude, noise, counter?
_PROFILES: dict[str, list[tuple[str, str, float, float, float, bool]]] = {
    "electricity": [("energy_import", "kWh", 1000.0, 0.0, 0.0, True), ("active_power", "kW", 3.0, 2.0, 0.2, False)],
    "water": [("volume_forward", "m3", 500.0, 0.0, 0.0, True), ("flow", "m3/h", 0.6, 0.5, 0.05, False)],
    "fire_pressure": [("pressure", "MPa", 0.32, 0.02, 0.005, False)],
    "fire_level": [("level", "m", 3.2, 0.05, 0.01, False)],
}
_DEFAULT = [("temperature", "°C", 22.0, 4.0, 0.3, False)]


class SyntheticSource:
    def __init__(self, bus: SyntheticBusConfig, devices: Sequence[DeviceConfig], config: EstateConfig,
                 clock: Clock | None = None) -> None:
        self.bus = bus
        self.devices = list(devices)
        self.clock = clock or SystemClock()
        self._rng = random.Random(bus.seed)
        self._counters: dict[tuple[str, str], float] = {}

    @property
    def name(self) -> str:
        return f"bus:{self.bus.id}"

    @property
    def fingerprint(self) -> str:
        blob = self.bus.model_dump_json() + "".join(d.model_dump_json() for d in self.devices)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def sample(self, device: DeviceConfig, interval_s: float) -> list[Reading]:
        now = self.clock.now()
        day_phase = math.sin((now.hour + now.minute / 60) / 24 * 2 * math.pi - math.pi / 2)
        out = []
        for point, unit, base, amplitude, noise, counter in _PROFILES.get(device.category, _DEFAULT):
            if counter:
                key = (device.id, point)
                rate = 0.001 * interval_s * (1.2 + day_phase)  # kWh or m3 per poll
                value = self._counters.get(key, base) + max(0.0, rate)
                self._counters[key] = value
            else:
                value = base + amplitude * day_phase + self._rng.gauss(0, noise)
            out.append(Reading(device.id, point, round(value, 4), unit, now))
        return out

    async def run(self, sink: Sink) -> None:
        """Poll each device at its interval, staggered so devices do not all fire at once."""
        tasks = [asyncio.create_task(self._device_loop(d, sink, i), name=f"{self.name}:{d.id}")
                 for i, d in enumerate(self.devices)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()

    async def _device_loop(self, device: DeviceConfig, sink: Sink, index: int) -> None:
        await asyncio.sleep((index * 0.137) % max(device.poll_interval_s, 0.001))
        availability = AvailabilityReporter(device.id)
        while True:
            if device.id in self.bus.fail_devices:
                await sink.device_status(availability.failed(self.clock.now(), "no answer (synthetic)"))
            else:
                await sink.readings(self.sample(device, device.poll_interval_s))
                if (status := availability.succeeded(self.clock.now())) is not None:
                    await sink.device_status(status)
            await asyncio.sleep(device.poll_interval_s)


def build(bus: object, devices: list[DeviceConfig], config: EstateConfig) -> SyntheticSource:
    assert isinstance(bus, SyntheticBusConfig)
    return SyntheticSource(bus, devices, config)


def probe_synthetic_device(config: EstateConfig, bus: SyntheticBusConfig, device: DeviceConfig) -> DeviceProbe:
    """The panel's test read: one sample, as the running source would produce it."""
    readings = SyntheticSource(bus, [device], config).sample(device, device.poll_interval_s)
    return DeviceProbe(device.id, ok=True, values=tuple(ProbeValue(r.point, r.value, r.unit) for r in readings))
