"""What the rule engine says: an alarm opens (raise) or closes by itself (clear).

An alarm is identified by its key ``(code, subject, point)``:

* ``code``: what is wrong, dotted, e.g. ``fire.hydrant_pressure_low``, ``device.offline``;
* ``subject``: the thing it is wrong with: a device id, or a bus id for bus-level alarms such as
  ``modbus.overload`` (then ``device_id`` is ``None``);
* ``point``: the measured point for per-point alarms (``pressure``), else ``None``.

At most one alarm per key is open at a time: that is how "no duplicate alarms" (GB/T 20299.3
draft 8.1.8) is enforced. ``data`` always carries ``subject`` and ``point`` so that an alarm read
back from the store (``Store.open_alarms``) maps onto the same key after a restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from edge.records import Severity

AlarmKey = tuple[str, str, str | None]


class TransitionKind(StrEnum):
    RAISE = "raise"
    CLEAR = "clear"


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """One alarm opening or clearing. The pipeline turns it into an ``AlarmRecord``."""

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

    @property
    def key(self) -> AlarmKey:
        return (self.code, self.subject, self.point)

    @property
    def is_raise(self) -> bool:
        return self.kind is TransitionKind.RAISE


def key_of(alarm: Any) -> AlarmKey:
    """The key of an open alarm as the store returns it (a dict) or as a record/transition object.

    Looks for ``code``, ``device_id`` and ``data['subject']`` / ``data['point']``; a record without
    a subject is keyed on its device id.
    """
    if isinstance(alarm, Mapping):
        code, device_id, data = alarm.get("code"), alarm.get("device_id"), alarm.get("data") or {}
    else:
        code, device_id = getattr(alarm, "code", None), getattr(alarm, "device_id", None)
        data = getattr(alarm, "data", None) or {}
    if not code:
        raise ValueError(f"open alarm without a code: {alarm!r}")
    subject = data.get("subject") or device_id or ""
    return (str(code), str(subject), data.get("point"))
