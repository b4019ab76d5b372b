"""One simulated DL/T 645 meter: answers reads of its profile's data items with plausible values.

Energy counters grow with the simulated load; voltage, current, power, power factor and frequency
wander a little around a household's figures. A data item the profile does not have gets the
abnormal reply "no data requested" (0xD1 / 0xC1), as a real meter answers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime

from drivers.dlt645 import codec
from drivers.dlt645.profile import Dlt645Profile
from edge.units import convert
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
    split_replies: bool = False  # answer in two frames (0xB1, then 0x92 to the 0x12 follow-up read)
    overrides: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    reads: int = 0
    clock_set: list[datetime] = field(default_factory=list)
    _rest: dict[int, bytes] = field(default_factory=dict)

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
        if frame.control == codec.TIME_SYNC and frame.address == codec.BROADCAST_ADDRESS and len(frame.data) == 6:
            second, minute, hour, day, month, year = (codec.bcd_to_int(frame.data[i : i + 1]) for i in range(6))
            self.clock_set.append(datetime(2000 + year, month, day, hour, minute, second))  # the meter's local time
            return None  # nobody answers a broadcast
        if frame.control == codec.READ_ADDRESS and frame.address == codec.WILDCARD_ADDRESS:
            return apply_faults(self, codec.address_reply(self.address))
        if frame.address != self.address:
            return None
        if version == 2007 and frame.control == codec.READ_FOLLOW_UP and len(frame.data) == 5:
            di, seq = int.from_bytes(frame.data[:4], "little"), frame.data[4]
            rest = self._rest.pop(di, None)
            if rest is None:
                return apply_faults(self, codec.abnormal_reply(self.address, codec.NO_DATA))
            return apply_faults(self, codec.read_reply(self.address, di, rest, seq=seq))
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
                if self.split_replies and version == 2007 and len(payload) > 1:
                    half = len(payload) // 2
                    self._rest[di] = payload[half:]
                    return apply_faults(self, codec.read_reply(self.address, di, payload[:half], more=True))
                return apply_faults(self, codec.read_reply(self.address, di, payload, version=version))
        return apply_faults(self, codec.abnormal_reply(self.address, codec.NO_DATA, version=version))
