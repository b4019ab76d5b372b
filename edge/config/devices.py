"""Devices: what is measured, where it hangs, and what its limits are."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edge.config.common import Identifier, Section

Category = Literal[
    "electricity", "water", "fire_pressure", "fire_level", "environment", "lighting",
    "hvac", "ev_charging", "power_distribution", "water_supply", "other",
    "gas", "heat",  # CJ/T 188 gas (T=0x30) and heat (T=0x20/0x21) meters
]


class Location(Section):
    building: str = Field(description="Building name or number, e.g. '3栋'.")
    unit: str | None = Field(None, description="Unit (单元) within the building.")
    floor: str | None = Field(None, description="Floor, e.g. 'B1', '12'.")
    room: str | None = Field(None, description="Room or place, e.g. '消防泵房'.")


class PointThreshold(Section):
    """Limits for one point; the shared rule engine raises and clears alarms from them."""

    low: float | None = Field(None, description="Alarm when the value stays below this (canonical unit).")
    high: float | None = Field(None, description="Alarm when the value stays above this (canonical unit).")
    hysteresis: float = Field(0.0, ge=0, description="Clear only once the value is back past the limit by this much.")
    min_duration_s: float = Field(30.0, ge=0, description="The condition must hold this long before the alarm is raised.")
    valid_min: float | None = Field(None, description="Below this the sensor is faulty (bad quality), not alarming.")
    valid_max: float | None = Field(None, description="Above this the sensor is faulty (bad quality), not alarming.")

    @model_validator(mode="after")
    def _ordered(self) -> PointThreshold:
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.valid_min is not None and self.valid_max is not None and self.valid_min >= self.valid_max:
            raise ValueError("valid_min must be below valid_max")
        return self


class StateRule(Section):
    """A 0/1 or enumerated point whose states are alarms: a door contact, a water probe, a lift's fault code.

    Give either ``active`` (the alarm values) or ``inactive`` (the normal values; any other is the alarm).
    """

    alarm: str = Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z0-9_.]+$",
                       description="Alarm code, e.g. fire.door_open, water.ingress, elevator.fault.")
    active: list[int] | None = Field(None, description="Values that are the alarm state, e.g. [1].")
    inactive: list[int] | None = Field(None, description="Values that are normal; every other value is the alarm, e.g. [0].")
    min_duration_s: float = Field(0.0, ge=0, le=86400, description="The alarm state must last this long first, seconds.")
    severity: Literal["info", "warning", "major", "critical"] = Field("major", description="Severity of the alarm.")
    names: dict[int, str] = Field(default_factory=dict, description="Staff-visible name per value, e.g. {0: 关, 1: 开}.")
    context: list[str] = Field(default_factory=list, description="Points of the same device shown with the alarm, e.g. [floor].")
    label: str | None = Field(None, description="What the point is, for the message (default: the device name).")

    @model_validator(mode="after")
    def _one_side(self) -> StateRule:
        if (self.active is None) == (self.inactive is None):
            raise ValueError("give either active (alarm values) or inactive (normal values)")
        return self


class CounterLimits(Section):
    """Per-device override of what the profile says about one counter point."""

    rollover: float | None = Field(None, gt=0, description="Value at which the register wraps to 0 (canonical unit).")
    max_rate_per_s: float | None = Field(
        None, gt=0, description="Fastest plausible growth, canonical unit per second; faster is a meter swap.")


class DeviceConfig(Section):
    id: Identifier = Field(description="Unique device id within the estate (kept in history after removal).")
    name: str = Field(description="Human name shown in the panel.")
    bus: Identifier = Field(description="Id of the bus (or source) this device is reached through.")
    profile: str | None = Field(None, description="Device profile (register map), e.g. 'chint_ddsu666'.")
    category: Category = Field(description="What the device measures; drives indicators and rules.")
    role: Literal["most_unfavourable_point", "highest_point", "pump_outlet", "water_source", "main_incomer"] | None = (
        Field(None, description="Its place in a system, reported with the device inventory (seed 004 8.3.3): the most "
              "unfavourable point of a hydrant network, the highest point of a sprinkler network, a pump outlet, "
              "a fire pool or tank, an incoming supply meter."))
    location: Location
    unit_id: int | None = Field(None, ge=0, le=255, description="Modbus unit id / RS-485 address.")
    poll_interval_s: float = Field(10.0, gt=0, le=86400, description="Seconds between polls.")
    timeout_s: float = Field(1.0, gt=0, le=60, description="Seconds to wait for one answer.")
    retries: int = Field(1, ge=0, le=10, description="Immediate retries of a failed read before backing off.")
    sub_item: str | None = Field(
        None, description="Energy sub-item (分项) tag, e.g. 'public_lighting', 'lifts', 'pumps', 'households'."
    )
    thresholds: dict[str, PointThreshold] = Field(default_factory=dict, description="Per-point alarm limits.")
    counters: dict[str, CounterLimits] = Field(
        default_factory=dict, description="Per-point counter rollover / plausible rate, overriding the profile's.")
    states: dict[str, StateRule] = Field(
        default_factory=dict, description="Per-point state alarms (contact inputs, lift faults), see edge.rules.states."
    )
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Protocol-specific settings (e.g. MQTT topic, BLE address)."
    )
    enabled: bool = True
