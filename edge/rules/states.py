"""State inputs: 0/1 and enumerated points whose states are alarms (contact inputs, lift boxes).

A DI module's channel wired to a fire door's contact, a hydrant cabinet's door switch, a
water-ingress probe or a breaker's auxiliary contact, and a lift monitoring box's fault code or
"passenger trapped" flag, are all the same kind of rule: the point's value is a *state*, some states
are the alarm, the others are normal. Per point (``DeviceConfig.states``):

* ``active`` lists the alarm values (a door contact: ``[1]``), or ``inactive`` the normal ones and
  every other value is the alarm (a lift fault code: ``[0]``);
* ``min_duration_s``: the alarm state must last this long on the readings' own timestamps before the
  alarm is raised (a fire door may stand open while people pass; 004 7.3.2 a) asks about doors left
  open). Going back to a normal value clears the alarm at once and restarts the wait;
* ``names`` gives staff-visible names of the values (``{0: 正常, 3: 门锁回路故障}``) and ``context``
  other points of the same device shown with the alarm (a lift fault's ``floor``);
* a bad-quality reading is neither state: it neither raises, clears nor restarts the wait (the
  sensor-fault rule of the engine reports it).

One alarm per point while the state lasts: a lift whose fault code changes from 3 to 5 keeps its one
``elevator.fault`` alarm (the latest code is in the record's ``data`` when it clears). Pure: the
engine hands readings in and gets transitions out, raised and cleared through its own open set, so
restarts and duplicates behave as for every other rule.

The ``min_duration_s`` waits survive restarts as the threshold rules' do: the engine hands
``pending_timers()`` to ``edge.rules.persistence`` (direction ``"state"`` in its ``rule_timer``
table) and ``restore_timers()`` resumes them, so a door held open across a daemon restart raises
its alarm on time, not a full minimum later.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edge.messages import MessageFields, say
from edge.records import Quality, Reading, Severity
from edge.transitions import AlarmKey, AlarmTransition

# Named codes of context points, shown instead of the number (the lift box template's codes,
# drivers/modbus/profiles/generic_lift_box.yaml: 上行 / 下行 / 停止, 开门 / 关门). The words staff read
# are the message catalogue's ``context`` table (``direction.1``: 上行 / going up), in either language.
CONTEXT_NAMES: dict[str, dict[int, str]] = {
    "direction": {0: "停止", 1: "上行", 2: "下行"},
    "door_state": {0: "关门", 1: "开门"},
}


@dataclass(frozen=True, slots=True)
class StateSpec:
    device_id: str
    point: str
    alarm_code: str
    active: frozenset[int] | None = None
    inactive: frozenset[int] | None = None
    min_duration_s: float = 0.0
    severity: Severity = Severity.MAJOR
    names: Mapping[int, str] = field(default_factory=dict)
    context: tuple[str, ...] = ()
    label: str = ""

    def is_alarm(self, value: int) -> bool:
        if self.active is not None:
            return value in self.active
        return self.inactive is not None and value not in self.inactive

    def name(self, value: int) -> str:
        return self.names.get(value, str(value))


RaiseFn = Callable[[str, str, str | None, datetime, Severity, MessageFields, dict[str, Any], str | None],
                   AlarmTransition]
ClearFn = Callable[[AlarmKey, datetime, MessageFields, dict[str, Any], str | None], AlarmTransition]


class StateRules:
    """Evaluates every state rule; ``open_alarms`` is the engine's open set (shared, never copied)."""

    def __init__(self, specs: Mapping[tuple[str, str], StateSpec], raise_: RaiseFn, clear: ClearFn,
                 open_alarms: MutableMapping[AlarmKey, datetime | None]) -> None:
        self.specs = specs
        self._raise = raise_
        self._clear = clear
        self._open = open_alarms
        self._since: dict[tuple[str, str], datetime] = {}
        self._context_points = {(s.device_id, c) for s in specs.values() for c in s.context}
        self._latest: dict[tuple[str, str], float] = {}

    def pending_timers(self) -> dict[tuple[str, str], datetime]:
        """(device, point) -> since when its alarm state has lasted (a copy).

        Only states still waiting out their ``min_duration_s``.
        """
        return dict(self._since)

    def restore_timers(self, timers: Mapping[tuple[str, str], datetime]) -> None:
        """Resume waits that were running before a restart.

        A wait of a point that no longer has a state rule with a minimum duration is dropped (the rule was
        removed or made immediate).
        """
        for key, since in timers.items():
            spec = self.specs.get(key)
            if spec is not None and spec.min_duration_s > 0:
                self._since[key] = since

    def on_readings(self, readings: Sequence[Reading]) -> list[AlarmTransition]:
        out: list[AlarmTransition] = []
        specs, context = self.specs, self._context_points
        if context:  # a poll's floor and fault code arrive together: take the floor of the same poll
            for r in readings:
                if (r.device_id, r.point) in context and r.quality is not Quality.BAD and math.isfinite(r.value):
                    self._latest[(r.device_id, r.point)] = r.value
        for r in readings:
            key = (r.device_id, r.point)
            spec = specs.get(key)
            if spec is None or r.quality is Quality.BAD or not math.isfinite(r.value):
                continue
            transition = self._evaluate(spec, r, round(r.value))
            if transition is not None:
                out.append(transition)
        return out

    def _evaluate(self, spec: StateSpec, r: Reading, value: int) -> AlarmTransition | None:
        key = (r.device_id, r.point)
        alarm_key: AlarmKey = (spec.alarm_code, r.device_id, r.point)
        data = self._data(spec, value)
        if not spec.is_alarm(value):
            self._since.pop(key, None)
            if alarm_key in self._open:
                return self._clear(alarm_key, r.ts, say("state.recovered", what=spec.label, state=spec.name(value)),
                                   data, r.device_id)
            return None
        if alarm_key in self._open:
            return None
        since = self._since.setdefault(key, r.ts)
        held = (r.ts - since).total_seconds()
        if held < spec.min_duration_s:
            return None
        self._since.pop(key, None)
        # The label and the state names are the installer's words (config); the context its values.
        text = say("state.alarm_held" if spec.min_duration_s else "state.alarm", what=spec.label,
                   state=spec.name(value), context=self._context_text(spec), held_s=round(held))
        return self._raise(spec.alarm_code, r.device_id, r.point, r.ts, spec.severity, text,
                           {**data, "held_s": round(held, 1)}, r.device_id)

    def _data(self, spec: StateSpec, value: int) -> dict[str, Any]:
        data: dict[str, Any] = {"value": value, "state": spec.name(value), "min_duration_s": spec.min_duration_s}
        for point in spec.context:
            data[point] = self._latest.get((spec.device_id, point))
        return data

    def _context_text(self, spec: StateSpec) -> str:
        """The context points' latest values as ``floor=12,direction=0``.

        The message catalogue's ``context`` filter words them in the reader's language (a Chinese phrase
        here could not be re-rendered).
        """
        parts = []
        for point in spec.context:
            value = self._latest.get((spec.device_id, point))
            if value is not None:
                parts.append(f"{point}={value:g}")
        return ",".join(parts)
