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
from edge.rules.transitions import AlarmKey, AlarmTransition, TransitionKind, key_of

__all__ = [
    "OFFLINE",
    "OVERLOAD",
    "SENSOR_FAULT",
    "AlarmKey",
    "AlarmTransition",
    "DeviceSpec",
    "EventAlarmSpec",
    "RuleEngine",
    "RuleSpecs",
    "ThresholdSpec",
    "TransitionKind",
    "key_of",
    "specs_from_config",
    "threshold_code",
]
