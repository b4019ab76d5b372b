"""One simulated CJ/T 188 meter: answers read data (901F) and read address like a residential meter.

Volumes grow with a household's draw; a heat meter's heat grows with its power. The valve and
battery bits of the status word can be set (``valve``: 0 open, 1 closed, 2 abnormal; ``low_battery``)
so the driver's state alarms can be driven from a test or a scenario.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from drivers.cjt188 import codec
from drivers.cjt188.profile import Cjt188Profile
from simulators.dlt645.line import apply_faults


@dataclass
class SimMeter:
    address: str
    profile: Cjt188Profile
    volume_start_m3: float = 321.09
    flow_m3_h: float = 0.6
    heat_power_w: float = 5400.0
    valve: int = 0
    low_battery: bool = False
    silent: bool = False
    corrupt: bool = False
    truncate: bool = False
    garbage: bool = False
    started: float = field(default_factory=time.monotonic)
    reads: int = 0

    @property
    def meter_type(self) -> int:
        return self.profile.meter_type

    def values(self) -> dict[str, float]:
        hours = (time.monotonic() - self.started) / 3600
        volume = self.volume_start_m3 + self.flow_m3_h * hours
        return {
            "volume": volume, "volume_settlement": self.volume_start_m3,
            "heat_energy": 1234.5 + self.heat_power_w / 1000 * hours, "heat_settlement": 1200.0,
            "heat_power": self.heat_power_w, "flow_rate": self.flow_m3_h,
            "supply_temperature": 55.2, "return_temperature": 41.7, "working_time": 8760 + hours,
        }

    def status(self) -> int:
        return self.profile.status_bits.bits().encode(self.valve, self.low_battery)

    def answer(self, frame: codec.Frame) -> bytes | None:
        if frame.is_reply:
            return None
        order = self.profile.di_order
        if frame.control == codec.READ_ADDRESS and frame.address == codec.WILDCARD_ADDRESS:
            if len(frame.data) != 3:
                return None
            return apply_faults(self, codec.read_address_reply(self.meter_type, self.address, frame.data[2], order=order))
        if frame.address != self.address or frame.meter_type not in (self.meter_type, codec.WILDCARD_TYPE):
            return None
        if frame.control != codec.READ_DATA or len(frame.data) != 3:
            return None
        if frame.data[:2] != codec.di_bytes(codec.DI_READ_DATA, order):
            return None  # a DI this meter does not understand in this byte order: real meters stay silent
        self.reads += 1
        ser = frame.data[2]
        payload = codec.encode_meter_data(self.meter_type, self.values(), self.status(), datetime.now())  # local time
        return apply_faults(self, codec.read_data_reply(self.meter_type, self.address, ser, payload, order=order))
