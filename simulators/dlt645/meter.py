"""One simulated DL/T 645 meter: answers reads of its profile's data items with plausible values.

Energy counters grow with the simulated load; voltage, current, power, power factor and frequency
wander a little around a household's figures. A data item the profile does not have gets the
abnormal reply "no data requested" (0xD1 / 0xC1), as a real meter answers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from drivers.dlt645 import codec
from drivers.dlt645.profile import Dlt645Profile
from edge.normalise.units import convert
from simulators.dlt645.line import apply_faults

_GAUGES = {"V": 228.7, "A": 5.0, "W": 1100.0, "": 0.95, "Hz": 50.0, "kWh": 0.0}


@dataclass
class SimMeter:
    address: str
    profile: Dlt645Profile
    energy_start_kwh: float = 12345.67
    load_kw: float = 1.1
    silent: bool = False
    corrupt: bool = False
    truncate: bool = False
    garbage: bool = False
    overrides: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    reads: int = 0

    def value(self, name: str) -> float:
        """The point's current value in its canonical unit."""
        if name in self.overrides:
            return self.overrides[name]
        point = self.profile.points[name]
        hours = (time.monotonic() - self.started) / 3600
        if point.kind == "counter":
            share = 1.0 if name == "energy_import" else 0.01
            return self.energy_start_kwh * share + self.load_kw * share * hours
        base = _GAUGES.get(point.unit, 1.0)
        return base * (1 + 0.01 * math.sin(hours * 3600 / 30))

    def answer(self, frame: codec.Frame) -> bytes | None:
        version = self.profile.version
        size = 4 if version == 2007 else 2
        if frame.is_reply:
            return None
        if frame.control == codec.READ_ADDRESS and frame.address == codec.WILDCARD_ADDRESS:
            return apply_faults(self, codec.address_reply(self.address))
        if frame.address != self.address:
            return None
        read = codec.READ_DATA if version == 2007 else codec.READ_DATA_1997
        if frame.control != read or len(frame.data) != size:
            return None
        self.reads += 1
        di = int.from_bytes(frame.data, "little")
        for name, point in self.profile.points.items():
            if point.di == di:
                value = self.value(name) / point.scale
                if point.device_unit:
                    value = convert(value, point.unit, point.device_unit)
                payload = point.value_format.encode(value)
                return apply_faults(self, codec.read_reply(self.address, di, payload, version=version))
        return apply_faults(self, codec.abnormal_reply(self.address, codec.NO_DATA, version=version))
