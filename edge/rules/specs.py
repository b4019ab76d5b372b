"""Rule specifications: what to watch, with which limits, under which alarm code.

Built once from the estate configuration (``specs_from_config``) and handed to the engine, so the
engine itself never reads config. Defaults, all overridable per device:

* A ``fire_pressure`` device's ``pressure`` point gets a low-pressure rule at the minimum of its
  building's class (GB 50974-2014 5.2.2: 0.07 MPa residential, 0.10 MPa class-1 public; see
  ``edge.config.thresholds``), held for ``fire_pressure_min_duration_s`` (30 s), clearing
  ``fire_pressure_hysteresis_mpa`` above the minimum. A device's own ``thresholds.pressure.low``
  replaces the default (there is no way to switch a hydrant's low-pressure alarm off); its own
  ``hysteresis`` / ``min_duration_s``, when given, replace those defaults.
* ``fire_pressure`` / ``fire_level`` points get the category's valid range, outside which the
  sensor is faulty (``device.sensor_fault``), not the water.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edge.records import Severity
from edge.rules.states import StateSpec

if TYPE_CHECKING:
    from edge.config import EstateConfig
    from edge.config.devices import DeviceConfig, PointThreshold
    from edge.config.thresholds import ThresholdDefaults

OFFLINE = "device.offline"
LINK_OFFLINE = "link.offline"  # every device behind one converter / RS-485 line is silent
SENSOR_FAULT = "device.sensor_fault"
OVERLOAD = "modbus.overload"

# (category, point, direction) -> alarm code; anything else is "<category>.<point>_<direction>".
_NAMED_CODES: dict[tuple[str, str, str], str] = {
    ("fire_pressure", "pressure", "low"): "fire.hydrant_pressure_low",
    ("fire_pressure", "pressure", "high"): "fire.hydrant_pressure_high",
    ("fire_level", "level", "low"): "fire.water_level_low",
    ("fire_level", "level", "high"): "fire.water_level_high",
    ("water_supply", "level", "low"): "water.tank_level_low",
    ("water_supply", "level", "high"): "water.tank_level_high",
}

FIRE_CATEGORIES = frozenset({"fire_pressure", "fire_level"})


def threshold_code(category: str, point: str, direction: str) -> str:
    return _NAMED_CODES.get((category, point, direction), f"{category}.{point}_{direction}")


@dataclass(frozen=True, slots=True)
class ThresholdSpec:
    """Limits of one point.

    A breach must last ``min_duration_s`` to raise; it clears once the value is back past the limit by
    ``hysteresis`` (no flapping around the limit).
    """

    device_id: str
    point: str
    low: float | None = None
    high: float | None = None
    hysteresis: float = 0.0
    min_duration_s: float = 30.0
    valid_min: float | None = None
    valid_max: float | None = None
    code_low: str = ""
    code_high: str = ""
    severity: Severity = Severity.MAJOR
    unit: str = ""


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    device_id: str
    category: str
    offline_after_failures: int = 3
    online_after_successes: int = 2
    severity: Severity = Severity.WARNING  # of its offline / sensor-fault alarms


@dataclass(frozen=True, slots=True)
class EventAlarmSpec:
    """An event code that opens and closes an alarm: ``data[active_key]`` true raises, false clears.

    The alarm's subject is ``data[subject_key]`` (else the event's device id). Later sources use the
    same shape, e.g. the vision analytics' "fire lane blocked / clear" events.
    """

    event_code: str
    alarm_code: str
    subject_key: str = "bus"
    active_key: str = "active"
    severity: Severity = Severity.WARNING


@dataclass(frozen=True, slots=True)
class RuleSpecs:
    thresholds: Mapping[tuple[str, str], ThresholdSpec]
    devices: Mapping[str, DeviceSpec]
    event_alarms: Mapping[str, EventAlarmSpec]
    default_offline_after: int = 3
    default_online_after: int = 2
    sensor_fault_clear_after: int = 2
    states: Mapping[tuple[str, str], StateSpec] = field(default_factory=dict)  # edge.rules.states


DEFAULT_EVENT_ALARMS: tuple[EventAlarmSpec, ...] = (
    EventAlarmSpec("modbus.overload", OVERLOAD, subject_key="bus", active_key="active", severity=Severity.WARNING),
    EventAlarmSpec("store.disk_full", "store.disk_full", subject_key="store", active_key="active",
                   severity=Severity.CRITICAL),
    # Meter lines (DL/T 645, CJ/T 188) share the Modbus lines' overload alarm.
    EventAlarmSpec("dlt645.overload", OVERLOAD, subject_key="bus", active_key="active", severity=Severity.WARNING),
    EventAlarmSpec("cjt188.overload", OVERLOAD, subject_key="bus", active_key="active", severity=Severity.WARNING),
    # CJ/T 188 status bits: one alarm per meter (the subject falls back to the event's device).
    EventAlarmSpec("cjt188.valve_abnormal", "meter.valve_abnormal", subject_key="device", severity=Severity.MAJOR),
    EventAlarmSpec("cjt188.battery_low", "meter.battery_low", subject_key="device", severity=Severity.WARNING),
    # The fire panel through its GB/T 26875.3 transmission device: one alarm per component and state
    # (003 7.1.6.3-7.1.6.4, 002 5.5.4.1 b)); the subject is "<device>/<system>-<component address>".
    EventAlarmSpec("gb26875.fire", "fire.alarm", subject_key="component", severity=Severity.CRITICAL),
    EventAlarmSpec("gb26875.fault", "fire.component_fault", subject_key="component", severity=Severity.MAJOR),
    EventAlarmSpec("gb26875.supervise", "fire.supervise", subject_key="component", severity=Severity.MAJOR),
    EventAlarmSpec("gb26875.power_fault", "fire.power_fault", subject_key="component", severity=Severity.MAJOR),
)


def _threshold(
    device: DeviceConfig, point: str, limit: PointThreshold | None, defaults: ThresholdDefaults
) -> ThresholdSpec | None:
    category = device.category
    fields = limit.model_fields_set if limit is not None else set()
    low = limit.low if limit is not None else None
    high = limit.high if limit is not None else None
    hysteresis = limit.hysteresis if limit is not None else 0.0
    min_duration = limit.min_duration_s if limit is not None else 30.0
    valid_min = limit.valid_min if limit is not None else None
    valid_max = limit.valid_max if limit is not None else None
    unit = ""
    if category == "fire_pressure" and point == "pressure":
        # A hydrant sensor always has a minimum: an unset (or null) low means the building class's.
        unit = "MPa"
        if low is None:
            low = defaults.hydrant_min_mpa(device.location.building)
        if "hysteresis" not in fields:
            hysteresis = defaults.fire_pressure_hysteresis_mpa
        if "min_duration_s" not in fields:
            min_duration = defaults.fire_pressure_min_duration_s
        if valid_min is None and valid_max is None:
            valid_min, valid_max = defaults.fire_pressure_valid_range_mpa
    elif category == "fire_level" and point == "level":
        unit = "m"
        if valid_min is None and valid_max is None:
            valid_min, valid_max = defaults.fire_level_valid_range_m
    if low is None and high is None and valid_min is None and valid_max is None:
        return None
    return ThresholdSpec(
        device_id=device.id,
        point=point,
        low=low,
        high=high,
        hysteresis=hysteresis,
        min_duration_s=min_duration,
        valid_min=valid_min,
        valid_max=valid_max,
        code_low=threshold_code(category, point, "low"),
        code_high=threshold_code(category, point, "high"),
        severity=Severity.CRITICAL if category in FIRE_CATEGORIES else Severity.MAJOR,
        unit=unit,
    )


def specs_from_config(config: EstateConfig, extra_event_alarms: tuple[EventAlarmSpec, ...] = ()) -> RuleSpecs:
    defaults = config.thresholds
    thresholds: dict[tuple[str, str], ThresholdSpec] = {}
    devices: dict[str, DeviceSpec] = {}
    for device in config.devices:
        if not device.enabled:
            continue
        devices[device.id] = DeviceSpec(
            device_id=device.id,
            category=device.category,
            offline_after_failures=defaults.offline_after_failures,
            online_after_successes=defaults.online_after_successes,
            severity=Severity.MAJOR if device.category in FIRE_CATEGORIES else Severity.WARNING,
        )
        points = set(device.thresholds)
        if device.category == "fire_pressure":
            points.add("pressure")
        if device.category == "fire_level":
            points.add("level")
        for point in sorted(points):
            spec = _threshold(device, point, device.thresholds.get(point), defaults)
            if spec is not None:
                thresholds[(device.id, point)] = spec
    event_alarms = {s.event_code: s for s in (*DEFAULT_EVENT_ALARMS, *extra_event_alarms)}
    states = {
        (device.id, point): StateSpec(
            device_id=device.id, point=point, alarm_code=rule.alarm,
            active=frozenset(rule.active) if rule.active is not None else None,
            inactive=frozenset(rule.inactive) if rule.inactive is not None else None,
            min_duration_s=rule.min_duration_s, severity=Severity(rule.severity), names=dict(rule.names),
            context=tuple(rule.context), label=rule.label or device.name,
        )
        for device in config.devices if device.enabled
        for point, rule in device.states.items()
    }
    return RuleSpecs(
        thresholds=thresholds,
        devices=devices,
        event_alarms=event_alarms,
        default_offline_after=defaults.offline_after_failures,
        default_online_after=defaults.online_after_successes,
        states=states,
    )
