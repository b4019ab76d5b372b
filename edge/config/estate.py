"""The root of an estate's configuration: one YAML file per estate."""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from edge.config.alarms import AlarmsConfig
from edge.config.buses import DEVICE_OPTIONS, BusConfig
from edge.config.cameras import CameraConfig
from edge.config.common import Identifier, Section
from edge.config.device_options import options_report
from edge.config.devices import DeviceConfig
from edge.config.indicators import IndicatorsConfig
from edge.config.panel import PanelConfig
from edge.config.platform import PlatformConfig
from edge.config.privacy import EvidenceBlur, PrivacyPolicy
from edge.config.store import StoreConfig
from edge.config.thresholds import ThresholdDefaults
from edge.config.training import TrainingConfig


class EstateInfo(Section):
    id: Identifier = Field(description="Estate id as registered with the platform (globally unique).")
    name: str = Field(min_length=1, description="Estate name, e.g. '阳光花园'.")
    gateway_id: Identifier = Field(description="This gateway's id as registered with the platform.")
    timezone: str = Field("Asia/Shanghai", description="IANA time zone for indicator periods.")
    language: Literal["zh-CN", "en"] = Field(
        "zh-CN", description="Language of alarm and event messages (uploads, notifications, panel default): "
        "zh-CN (Chinese, default) or en. Records carry a message_code, so either can be rendered later.")
    demo: bool = Field(
        False, description="A demonstration estate with simulated devices (what `estate-edge demo` writes): the "
        "panel shows a demo banner, and demo-only settings such as indicators.demo_period_s are allowed. "
        "Never set on a real estate.")

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
    training: TrainingConfig = TrainingConfig()
    privacy: PrivacyPolicy = Field(
        PrivacyPolicy(), description="Blurring people in camera evidence: the uploaded copy (on by default, "
        "the estate's decision) and the copy kept on the box (off by default); cameras may only add blurring.")

    @model_validator(mode="after")
    def _references(self) -> EstateConfig:
        problems = reference_problems(
            [b.id for b in self.buses],
            [(d.id, d.bus) for d in self.devices],
            [c.id for c in self.cameras],
            list(self.indicators.counter_points),
            [*self.indicators.energy.monthly_quota, *self.indicators.energy.quarterly_quota,
             *self.indicators.energy.yearly_quota],
        )
        if problems:
            raise ValueError("; ".join(problems))
        if self.indicators.demo_period_s is not None and not self.estate.demo:
            raise ValueError("indicators.demo_period_s is a demo clock: it needs estate.demo: true "
                             "(a real estate's indicators close by the hour, day and month only)")
        return self

    @model_validator(mode="after")
    def _device_options(self) -> EstateConfig:
        """Each device's ``options`` against its bus kind's model (``edge.config.device_options``)."""
        kinds = {bus.id: type(bus).device_options for bus in self.buses}
        problems = options_report(kinds, [(i, d.id, d.bus, d.options) for i, d in enumerate(self.devices)])
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _camera_privacy(self) -> EstateConfig:
        """A camera's privacy settings may add blurring, never remove what the estate asks for."""
        problems = []
        for index, camera in enumerate(self.cameras):
            try:
                self.privacy.for_camera(f"cameras[{index}]", camera.privacy.blur_people_upload,
                                        camera.privacy.blur_people_local)
            except ValueError as exc:
                problems.append(f"{exc} (camera {camera.id})")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def evidence_blur(self, camera: CameraConfig) -> EvidenceBlur:
        """What ``camera`` blurs under this estate's policy (validated above, so it does not raise)."""
        index = next((i for i, c in enumerate(self.cameras) if c.id == camera.id), 0)
        return self.privacy.for_camera(f"cameras[{index}]", camera.privacy.blur_people_upload,
                                       camera.privacy.blur_people_local)

    def device(self, device_id: str) -> DeviceConfig | None:
        return next((d for d in self.devices if d.id == device_id), None)


def reference_problems(
    bus_ids: list[str],
    devices: list[tuple[object, object]],
    camera_ids: list[str],
    counter_points: list[str],
    quota_names: list[str],
) -> list[str]:
    """What refers to something that is not there, or is there twice; each message starts with its path.

    Takes plain ids (``devices`` as ``(id, bus)`` in file order, ``None`` where an entry has none)
    so that ``raw_reference_problems`` can run the same checks on a config that failed field
    validation: an installer then sees every problem of the file in one ``estate-edge check``.
    """
    problems: list[str] = []
    for dup in sorted({i for i in bus_ids if bus_ids.count(i) > 1}):
        problems.append(f"bus id {dup!r} is used more than once")
    seen: set[str] = set()
    for index, (device_id, bus) in enumerate(devices):
        if isinstance(device_id, str):
            if device_id in seen:
                problems.append(f"devices[{index}].id: device id {device_id!r} is used more than once")
            seen.add(device_id)
        if isinstance(bus, str) and bus not in bus_ids:
            problems.append(f"devices[{index}].bus: no bus with id {bus!r} (known: {', '.join(bus_ids) or 'none'})")
    for dup in sorted({i for i in camera_ids if camera_ids.count(i) > 1}):
        problems.append(f"camera id {dup!r} is used more than once")
    for device_id in counter_points:
        if device_id not in seen:
            problems.append(f"indicators.counter_points: no device {device_id!r}")
    for name in quota_names:
        if not name.startswith("sub_item:") and name not in seen:
            problems.append(f"indicators.energy quota: {name!r} is neither a device id nor 'sub_item:<tag>'")
    return problems


def raw_reference_problems(data: object) -> list[str]:
    """``reference_problems`` on the parsed YAML itself, skipping whatever is malformed there."""

    def mapping(value: object) -> dict[str, Any]:  # parsed YAML: values of any shape
        return value if isinstance(value, dict) else {}

    def entries(key: str) -> list[dict[str, Any]]:
        value = mapping(data).get(key)
        return [mapping(item) for item in value] if isinstance(value, list) else []

    def ids(key: str) -> list[str]:
        return [i for item in entries(key) if isinstance(i := item.get("id"), str)]

    indicators = mapping(mapping(data).get("indicators"))
    kinds = {item["id"]: DEVICE_OPTIONS[item["kind"]] for item in entries("buses")
             if isinstance(item.get("id"), str) and item.get("kind") in DEVICE_OPTIONS}
    options = options_report(kinds, [(i, item.get("id"), item.get("bus"), item.get("options", {}))
                                     for i, item in enumerate(entries("devices"))])
    return options + reference_problems(
        ids("buses"),
        [(item.get("id"), item.get("bus")) for item in entries("devices")],
        ids("cameras"),
        [k for k in mapping(indicators.get("counter_points")) if isinstance(k, str)],
        [k for field in ("monthly_quota", "quarterly_quota", "yearly_quota")
         for k in mapping(mapping(indicators.get("energy")).get(field)) if isinstance(k, str)],
    )
