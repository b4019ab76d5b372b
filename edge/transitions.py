"""The alarm records that cross stages beside ``edge.records``.

Transitions out of the rules, open alarms read back from the store, and the one alarm key both are
matched on.

    rules (RuleEngine, StateRules, EnergyWatch) --AlarmTransition--> Pipeline --> AlarmManager.apply
    store (alarms table, is_open = 1) --OpenAlarm--> RuleEngine.restore / EnergyWatch.restore

An alarm is identified by its key ``(code, subject, point)`` (``alarm_key``):

* ``code``: what is wrong, dotted, e.g. ``fire.hydrant_pressure_low``, ``device.offline``;
* ``subject``: the thing it is wrong with: a device id, or a bus id for bus-level alarms such as
  ``modbus.overload`` (then ``device_id`` is ``None``);
* ``point``: the measured point for per-point alarms (``pressure``), else ``None``.

At most one alarm per key is open at a time: that is how "no duplicate alarms" (GB/T 20299.3
draft 8.1.8) is enforced. A stored alarm's ``data`` always carries ``subject`` and ``point`` (the
alarm manager writes them), so an alarm read back after a restart maps onto the same key; an alarm
stored without a subject is keyed on its device id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from edge.records import AlarmState, DeviceStatus, Event, Reading, Severity

AlarmKey = tuple[str, str, str | None]


def alarm_key(code: str, subject: str | None, point: str | None, device_id: str | None = None) -> AlarmKey:
    """The dedup key ``(code, subject, point)``; an empty ``subject`` falls back to ``device_id``, then ``""``.

    The one place the key is built: transitions (``AlarmTransition.key``), stored alarms
    (``OpenAlarm.key``) and the alarm manager's restore all go through it, so a key written before a
    restart is the key looked up after it. Raises ``ValueError`` for an empty ``code``.
    """
    if not code:
        raise ValueError(f"alarm without a code (subject {subject!r}, device {device_id!r})")
    return (code, subject or device_id or "", point)


class TransitionKind(StrEnum):
    RAISE = "raise"
    CLEAR = "clear"


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """One alarm opening or clearing, as a rule decided it. The alarm manager turns it into an ``AlarmRecord``."""

    code: str
    subject: str
    kind: TransitionKind
    ts: datetime
    severity: Severity
    message: str
    device_id: str | None = None
    point: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    evidence: bytes | None = field(default=None, repr=False)  # JPEG of the event that opened it, if any
    message_code: str = ""  # catalogue code of ``message`` (edge.messages)
    params: dict[str, Any] = field(default_factory=dict)  # the values ``message`` was rendered from
    evidence_local: bytes | None = field(default=None, repr=False)  # its panel copy where it differs (privacy)

    @property
    def key(self) -> AlarmKey:
        return alarm_key(self.code, self.subject, self.point, self.device_id)

    @property
    def is_raise(self) -> bool:
        return self.kind is TransitionKind.RAISE


@dataclass(frozen=True, slots=True)
class OpenAlarm:
    """An alarm that is open in the store (raised or escalated, not cleared or resolved).

    What the rule engines need after a restart to neither repeat a raise nor forget to clear:
    its key and when it was raised.
    """

    alarm_id: str
    code: str
    device_id: str | None
    severity: Severity
    state: AlarmState
    raised_at: datetime
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> AlarmKey:
        return alarm_key(self.code, self.data.get("subject"), self.data.get("point"), self.device_id)


class AlarmRules(Protocol):
    """A rule engine as the pipeline drives it: facts in, alarm transitions out.

    Pure apart from its own condition state; ``restore`` seeds that state from the store's open alarms
    after a (re)start.
    """

    def on_readings(self, readings: Sequence[Reading]) -> Sequence[AlarmTransition]: ...

    def on_status(self, status: DeviceStatus) -> Sequence[AlarmTransition]: ...

    def on_events(self, events: Sequence[Event]) -> Sequence[AlarmTransition]: ...

    def restore(self, open_alarms: Iterable[OpenAlarm]) -> None: ...
