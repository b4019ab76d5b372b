"""CJ/T 188 meter profiles: meter type, DI byte order, status bits, which 901F values to report. Data, not code.

    model: cold water meter      meter_type: 0x10      di_order: standard | high_first
    serial: {baudrate: 2400, parity: E}
    points: [volume, volume_settlement]       # names from drivers.cjt188.codec.decode_meter_data
    status_bits: {valve_mask: 0xC0, valve_closed: 0x40, valve_abnormal: 0xC0, battery_low: 0x20}

Every meter also reports ``valve`` (0 open, 1 closed, 2 abnormal) and ``battery_low`` (0 / 1)
from its status word, unless ``status_points: false``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from drivers.cjt188.codec import GAS_TYPES, HEAT_TYPES, WATER_TYPES, DiOrder, StatusBits
from drivers.dlt645.profile import SerialDefaults, load_yaml_profile
from drivers.profile_base import ProfileModel
from edge.config.devices import Category

SHIPPED_DIR = Path(__file__).resolve().parent / "profiles"

WATER_POINTS = ("volume", "volume_settlement")
HEAT_POINTS = ("heat_settlement", "heat_energy", "heat_power", "flow_rate", "volume", "supply_temperature",
               "return_temperature", "working_time")


class StatusBitsSpec(ProfileModel):
    valve_mask: int = Field(0xC0, ge=0, le=0xFFFF)
    valve_closed: int = Field(0x40, ge=0, le=0xFFFF)
    valve_abnormal: int = Field(0xC0, ge=0, le=0xFFFF)
    battery_low: int = Field(0x20, ge=0, le=0xFFFF)

    def bits(self) -> StatusBits:
        return StatusBits(self.valve_mask, self.valve_closed, self.valve_abnormal, self.battery_low)


class Cjt188Profile(ProfileModel):
    id: str
    model: str
    vendor: str = ""
    category: Category
    source: str
    description: str = ""
    meter_type: int = Field(ge=0x10, le=0x3F, description="T: 0x10/0x11 water, 0x20/0x21 heat, 0x30 gas.")
    di_order: DiOrder = DiOrder.STANDARD
    serial: SerialDefaults = SerialDefaults()
    points: list[str]
    status_points: bool = True
    status_bits: StatusBitsSpec = StatusBitsSpec()

    @model_validator(mode="after")
    def _known(self) -> Cjt188Profile:
        allowed: tuple[str, ...]
        if self.meter_type in HEAT_TYPES:
            allowed = HEAT_POINTS
        elif self.meter_type in WATER_TYPES | GAS_TYPES:
            allowed = WATER_POINTS
        else:
            raise ValueError(f"meter_type {self.meter_type:#04x} is not a water, heat or gas meter")
        unknown = [p for p in self.points if p not in allowed]
        if unknown or not self.points:
            raise ValueError(f"points {unknown or '[]'}: this meter type reports {', '.join(allowed)}")
        return self


def load_profile(name: str, extra_dirs: list[str] | tuple[str, ...] = ()) -> Cjt188Profile:
    return load_yaml_profile(name, extra_dirs, SHIPPED_DIR, Cjt188Profile)
