"""The frozen record types that cross stages: driver -> normaliser -> store -> rules/indicators -> uplink.

They are immutable (frozen, slotted dataclasses; ``Reading``, the hot one, a ``NamedTuple``): cheap
to build by the hundred thousand per second, and impossible to mutate behind another stage's back.
``id`` is empty until the store accepts the record; the store then mints a ULID (see ``edge.ids``),
which is the record's idempotency key upstream.
All timestamps are offset-aware UTC. The alarm records between the rules and the alarm manager
(``AlarmTransition``, ``OpenAlarm`` and their one key, ``alarm_key``) live beside these in ``edge.transitions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any, NamedTuple


class Quality(IntEnum):
    """How far a value can be trusted. Stored as a small integer."""

    GOOD = 0
    UNCERTAIN = 1  # e.g. a counter reset was detected, or the gateway clock jumped
    BAD = 2  # sensor fault, out of physical range, or decode failure

    @property
    def label(self) -> str:
        return self.name.lower()


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    MAJOR = "major"
    CRITICAL = "critical"


class AlarmState(StrEnum):
    """Lifecycle of an alarm. Each change is an immutable ``AlarmRecord`` sent upstream."""

    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    RESOLVED = "resolved"  # closed by staff with a note (disposal record)
    CLEARED = "cleared"  # the condition went away by itself


class Lane(StrEnum):
    """Upload lanes, in drain priority order: an alarm never waits behind telemetry."""

    ALARM = "alarm"
    DEVICE = "device"  # the device inventory: the platform needs it to read the alarms
    EVENT = "event"
    INDICATOR = "indicator"
    TELEMETRY = "telemetry"


LANE_PRIORITY: tuple[Lane, ...] = (Lane.ALARM, Lane.DEVICE, Lane.EVENT, Lane.INDICATOR, Lane.TELEMETRY)


class Reading(NamedTuple):
    """One measured value of one point of one device, in the point's canonical unit.

    A ``NamedTuple`` rather than a frozen dataclass like the other records: readings are built by
    the tens of thousands a second (a 500-device, 30-tag farm polled every second), and a frozen
    dataclass pays an ``object.__setattr__`` call per field (1.3 us a reading here, against 0.36 us).
    It is just as immutable; change one with ``reading._replace(value=...)``.
    """

    device_id: str
    point: str
    value: float
    unit: str
    ts: datetime
    quality: Quality = Quality.GOOD
    id: str = ""


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A driver's word on whether a device answered its last poll (the rules turn it into alarms)."""

    device_id: str
    online: bool
    ts: datetime
    error: str | None = None
    link: str | None = None  # the connection it is reached through (a converter's host:port, an RS-485 line)


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened: a detection, a device fault, an eviction, a config reload.

    ``evidence`` is an optional JPEG; the store keeps it as a file and uploads it as Base64.
    It is the copy that may leave the box (people blurred as the estate's privacy policy says);
    ``evidence_local`` is the copy the panel shows instead, only where the two differ
    (``edge.config.privacy``). A stage that drops ``evidence_local`` loses nothing private: the
    panel then shows the uploaded copy.
    """

    code: str
    ts: datetime
    device_id: str | None = None
    severity: Severity = Severity.INFO
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    evidence: bytes | None = None
    id: str = ""
    message_code: str = ""  # catalogue code of ``message`` (edge.messages); "" for records written before v2
    params: dict[str, Any] = field(default_factory=dict)  # the values ``message`` was rendered from
    evidence_local: bytes | None = field(default=None, repr=False)  # the panel's copy where it differs (privacy)


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """One step in an alarm's life (raised, acknowledged, escalated, resolved, cleared).

    ``alarm_id`` ties the steps of one alarm together; ``id`` is this step's own record id.
    ``actor`` is who did it ("system" for rules, a panel user name otherwise).
    ``evidence`` / ``evidence_local``: the uploaded and the panel's copy, as on ``Event``.
    """

    alarm_id: str
    code: str
    state: AlarmState
    ts: datetime
    device_id: str | None = None
    severity: Severity = Severity.MAJOR
    actor: str = "system"
    message: str = ""
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    evidence: bytes | None = None
    id: str = ""
    message_code: str = ""  # catalogue code of ``message`` (edge.messages)
    params: dict[str, Any] = field(default_factory=dict)  # the values ``message`` was rendered from
    evidence_local: bytes | None = field(default=None, repr=False)  # the panel's copy where it differs (privacy)


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """One version of one device's entry in the estate's inventory (seed 002 5.5.4.1 c), seed 004 7.3.3 a)).

    ``info`` holds what the platform needs to read the device's data and alarms: name, category,
    kind, profile, location, role, thresholds in force, enabled / removed (see ``edge.inventory``).
    A new version is written whenever any of it changes; a removed device keeps its history and gets
    a last version with ``removed: true``.
    """

    device_id: str
    version: int
    ts: datetime
    info: dict[str, Any] = field(default_factory=dict)
    id: str = ""


@dataclass(frozen=True, slots=True)
class IndicatorRecord:
    """A normalised indicator for one estate and period, citing the clauses it serves.

    ``key`` (estate, code, granularity, period_start, dimensions) identifies the figure; a later
    recomputation of a closed period (late data) is the same key with a higher ``version``.
    """

    estate_id: str
    gateway_id: str
    code: str
    granularity: str  # "hour" | "day" | "month"
    period_start: datetime
    period_end: datetime
    value: float | None
    unit: str
    samples: int
    coverage: float
    clauses: tuple[str, ...]
    dimensions: dict[str, str] = field(default_factory=dict)
    version: int = 1
    computed_at: datetime | None = None
    id: str = ""

    @property
    def key(self) -> str:
        dims = ",".join(f"{k}={v}" for k, v in sorted(self.dimensions.items()))
        return f"{self.estate_id}|{self.code}|{self.granularity}|{self.period_start.isoformat()}|{dims}"
