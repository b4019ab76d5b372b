"""The shared alarm rule engine (thresholds, sensor faults, availability, event alarms). See ``engine``."""

from edge.rules.engine import RuleEngine
from edge.rules.specs import (
    OFFLINE,
    OVERLOAD,
    SENSOR_FAULT,
    DeviceSpec,
    EventAlarmSpec,
    RuleSpecs,
    ThresholdSpec,
    specs_from_config,
    threshold_code,
)
from edge.transitions import AlarmKey, AlarmTransition, OpenAlarm, TransitionKind, alarm_key

__all__ = [
    "OFFLINE",
    "OVERLOAD",
    "SENSOR_FAULT",
    "AlarmKey",
    "AlarmTransition",
    "DeviceSpec",
    "EventAlarmSpec",
    "OpenAlarm",
    "RuleEngine",
    "RuleSpecs",
    "ThresholdSpec",
    "TransitionKind",
    "alarm_key",
    "specs_from_config",
    "threshold_code",
]
