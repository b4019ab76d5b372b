"""The root of an estate's configuration: one YAML file per estate."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from edge.config.alarms import AlarmsConfig
from edge.config.buses import BusConfig
from edge.config.cameras import CameraConfig
from edge.config.common import Identifier, Section
from edge.config.devices import DeviceConfig
from edge.config.indicators import IndicatorsConfig
from edge.config.panel import PanelConfig
from edge.config.platform import PlatformConfig
from edge.config.store import StoreConfig
from edge.config.thresholds import ThresholdDefaults


class EstateInfo(Section):
    id: Identifier = Field(description="Estate id as registered with the platform (globally unique).")
    name: str = Field(min_length=1, description="Estate name, e.g. '阳光花园'.")
    gateway_id: Identifier = Field(description="This gateway's id as registered with the platform.")
    timezone: str = Field("Asia/Shanghai", description="IANA time zone for indicator periods.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class EstateConfig(Section):
    """Everything one gateway needs to know about its estate."""

    estate: EstateInfo
    platform: PlatformConfig
    store: StoreConfig = StoreConfig()
    panel: PanelConfig = PanelConfig()
    thresholds: ThresholdDefaults = ThresholdDefaults()
    buses: list[BusConfig] = Field(default_factory=list)
    devices: list[DeviceConfig] = Field(default_factory=list)
    cameras: list[CameraConfig] = Field(default_factory=list)
    alarms: AlarmsConfig = AlarmsConfig()
    indicators: IndicatorsConfig = IndicatorsConfig()

    @model_validator(mode="after")
    def _references(self) -> EstateConfig:
        problems: list[str] = []
        bus_ids = [b.id for b in self.buses]
        for dup in sorted({i for i in bus_ids if bus_ids.count(i) > 1}):
            problems.append(f"bus id {dup!r} is used more than once")
        seen: set[str] = set()
        for index, device in enumerate(self.devices):
            if device.id in seen:
                problems.append(f"devices[{index}].id: device id {device.id!r} is used more than once")
            seen.add(device.id)
            if device.bus not in bus_ids:
                problems.append(f"devices[{index}].bus: no bus with id {device.bus!r} (known: {', '.join(bus_ids) or 'none'})")
        cam_ids = [c.id for c in self.cameras]
        for dup in sorted({i for i in cam_ids if cam_ids.count(i) > 1}):
            problems.append(f"camera id {dup!r} is used more than once")
        for device_id in self.indicators.counter_points:
            if device_id not in seen:
                problems.append(f"indicators.counter_points: no device {device_id!r}")
        for name in self.indicators.energy.monthly_quota:
            if not name.startswith("sub_item:") and name not in seen:
                problems.append(f"indicators.energy.monthly_quota: {name!r} is neither a device id nor 'sub_item:<tag>'")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def device(self, device_id: str) -> DeviceConfig | None:
        return next((d for d in self.devices if d.id == device_id), None)
