"""What the indicator families need to know about the estate, derived once from its config.

Which devices exist and how often they should report, which points carry a value worth keeping
(meter totals, fire pressure and level), the range each fire point must stay in (the same limits
the rule engine alarms on, ``edge.rules.specs``), and which point of a meter is its consumption
counter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edge.availability import CAMERA_PRESENCE_POINTS
from edge.config.indicators import IndicatorsConfig
from edge.indicators.catalog import FACILITY_KINDS
from edge.indicators.periods import LocalCalendar

if TYPE_CHECKING:
    from edge.config import EstateConfig

COUNTER_UNITS: dict[str, frozenset[str]] = {
    "electricity": frozenset({"kWh"}),
    "water": frozenset({"m³", "m3"}),
    "gas": frozenset({"m³", "m3"}),  # CJ/T 188 gas meters (T=0x30)
    "heat": frozenset({"kWh"}),  # CJ/T 188 heat meters: GJ / MWh are converted to kWh by the driver
}
FIRE_CATEGORIES: dict[str, str] = {
    "fire_pressure": "fire.hydrant_pressure_compliance",
    "fire_level": "fire.water_level_compliance",
}
_NOT_CONSUMPTION = ("export", "reverse", "backward")
_PREFERRED = ("import", "forward", "total")


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    id: str
    category: str
    poll_interval_s: float
    sub_item: str | None
    building: str
    presence_points: frozenset[str] | None = None  # only these points count as a report (cameras); None: all

    def counts_point(self, point: str) -> bool:
        return self.presence_points is None or point in self.presence_points

    @property
    def expected_per_hour(self) -> float:
        return 3600.0 / self.poll_interval_s

    @property
    def facility_kind(self) -> str | None:
        return FACILITY_KINDS.get(self.category)


@dataclass(frozen=True, slots=True)
class Range:
    low: float | None
    high: float | None


@dataclass
class EstateContext:
    estate_id: str
    gateway_id: str
    calendar: LocalCalendar
    settings: IndicatorsConfig
    devices: dict[str, DeviceInfo]
    ranges: dict[tuple[str, str], Range]  # fire (device, point) -> range
    offline_after_failures: int = 3
    lane_zones: int = 0  # fire_lane zones on enabled cameras
    ebike_zones: int = 0
    points: dict[str, dict[str, str]] = field(default_factory=dict)  # device -> point -> unit (seen so far)
    inventory_fields: tuple[int, int, int] = (0, 0, 0)  # (filled, required, entries): edge.inventory

    @classmethod
    def from_config(cls, config: EstateConfig) -> EstateContext:
        from edge.inventory import field_completeness
        from edge.rules.specs import specs_from_config

        settings: IndicatorsConfig = config.indicators
        devices = {
            d.id: DeviceInfo(d.id, d.category, d.poll_interval_s, d.sub_item, d.location.building)
            for d in config.devices if d.enabled
        }
        for camera in config.cameras:
            if camera.enabled:  # cameras count in device.online_rate and data.completeness like any device
                devices[camera.id] = DeviceInfo(camera.id, "camera", camera.health.interval_s, None,
                                                camera.location.building, CAMERA_PRESENCE_POINTS)
        ranges: dict[tuple[str, str], Range] = {}
        for (device_id, point), spec in specs_from_config(config).thresholds.items():
            device = devices.get(device_id)
            if device is not None and device.category in FIRE_CATEGORIES and (spec.low is not None
                                                                               or spec.high is not None):
                ranges[(device_id, point)] = Range(spec.low, spec.high)
        zones = [z.kind for c in config.cameras if c.enabled for z in c.zones]
        return cls(config.estate.id, config.estate.gateway_id, LocalCalendar(config.estate.timezone), settings,
                   devices, ranges, config.thresholds.offline_after_failures,
                   lane_zones=zones.count("fire_lane"), ebike_zones=zones.count("ebike_entry"),
                   inventory_fields=field_completeness(config))

    # ------------------------------------------------------------------ points

    def learn_point(self, device_id: str, point: str, unit: str) -> bool:
        """Remember a point; True when it is new."""
        known = self.points.setdefault(device_id, {})
        if point in known:
            return False
        known[point] = unit
        return True

    def keeps_values(self, device_id: str, point: str, unit: str) -> bool:
        """Whether the series keeps this point's values (else only its presence counts)."""
        device = self.devices.get(device_id)
        if device is None:
            return False
        if device.category in COUNTER_UNITS:
            return unit in COUNTER_UNITS[device.category]
        return (device_id, point) in self.ranges

    def n_points(self, device_id: str) -> int:
        """Points a poll of the device is expected to deliver (those seen so far; at least one)."""
        return max(1, len(self.points.get(device_id, ())))

    def counter_point(self, device_id: str) -> str | None:
        """The point whose total is the meter's consumption (see ``IndicatorsConfig.counter_points``)."""
        device = self.devices.get(device_id)
        if device is None or device.category not in COUNTER_UNITS:
            return None
        configured = self.settings.counter_points.get(device_id)
        if configured:
            return configured
        units = COUNTER_UNITS[device.category]
        candidates = sorted(p for p, u in self.points.get(device_id, {}).items() if u in units)
        candidates = [p for p in candidates if not any(w in p.lower() for w in _NOT_CONSUMPTION)] or candidates
        for word in _PREFERRED:
            for point in candidates:
                if word in point.lower():
                    return point
        return candidates[0] if candidates else None

    def meters(self, category: str) -> list[DeviceInfo]:
        return [d for d in self.devices.values() if d.category == category]
