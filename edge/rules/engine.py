"""The shared alarm rule engine: facts in, alarm transitions out. Pure and clock-injectable.

    evaluate(item, now) -> list[AlarmTransition]      item: Reading | DeviceStatus | Event

* **Thresholds** (``ThresholdSpec``): a value below ``low`` (above ``high``) for ``min_duration_s``
  raises; it clears once the value is back above ``low + hysteresis`` (below ``high - hysteresis``).
  Durations are measured on the readings' own timestamps, so a replayed or time-accelerated day
  behaves exactly like a real one. The breach must be continuous: a good value in between restarts
  the timer, a bad-quality value neither continues nor restarts it.
* **Sensor faults**: a reading with quality ``BAD``, or outside the point's valid range, raises
  ``device.sensor_fault`` for that point at once and is *not* evaluated against thresholds (a
  broken transmitter reading -0.2 MPa is not a pressure drop). It clears after
  ``sensor_fault_clear_after`` consecutive valid readings.
* **Availability**: ``DeviceStatus`` facts count consecutive failures / successes;
  ``offline_after_failures`` failures raise ``device.offline``, ``online_after_successes``
  successes clear it.
* **Event alarms** (``EventAlarmSpec``): an event such as ``modbus.overload`` with
  ``data.active`` true raises, false clears.

No duplicates: the engine keeps the set of open alarm keys and never raises a key that is open nor
clears one that is not. ``restore(open_alarms)`` seeds that set at startup from the store, so a
restart neither repeats a raise nor forgets to clear. ``now`` is only used to stamp transitions
that have no timestamp of their own; the engine never reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from math import isfinite
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from edge.clock import iso_z
from edge.messages import MessageFields, say
from edge.records import DeviceStatus, Event, Quality, Reading, Severity
from edge.rules.specs import (
    LINK_OFFLINE,
    OFFLINE,
    SENSOR_FAULT,
    DeviceSpec,
    EventAlarmSpec,
    RuleSpecs,
    ThresholdSpec,
)
from edge.rules.states import StateRules
from edge.transitions import AlarmKey, AlarmTransition, OpenAlarm, TransitionKind

if TYPE_CHECKING:
    from edge.config import EstateConfig

TimerKey = tuple[str, str, str]  # device_id, point, "low" | "high" (thresholds) | "state" (state inputs)
_POINT_KEY = itemgetter(0, 1)  # Reading.device_id, .point: the thresholds' key, built in C on the hot path
STATE_TIMER = "state"


@dataclass(slots=True)
class _PointState:
    low_since: datetime | None = None
    high_since: datetime | None = None
    good_streak: int = 0


@dataclass(slots=True)
class _DeviceState:
    failures: int = 0
    successes: int = 0
    link: str | None = None
    held: bool = False  # offline, but reported under its link's alarm instead of its own


class RuleEngine:
    """Implements the pipeline's ``RuleEngine`` protocol (``on_readings`` / ``on_status`` / ``on_events``)."""

    def __init__(self, specs: RuleSpecs) -> None:
        self._specs = specs
        self._open: dict[AlarmKey, datetime | None] = {}
        self._points: dict[tuple[str, str], _PointState] = {}
        # Pending min_duration timers (device, point, "low"|"high") -> since: kept in the store by
        # edge.rules.persistence so a restart does not restart the wait (issue 10 defect 4).
        self._timers: dict[TimerKey, datetime] = {}
        self._devices: dict[str, _DeviceState] = {}
        self._links: dict[str, set[str]] = {}  # link -> devices seen behind it (learnt from DeviceStatus.link)
        self._fault_open = 0  # open device.sensor_fault alarms (the reading fast path needs none)
        self._states = StateRules(specs.states, self._raise, self._clear, self._open)  # contact inputs, lifts

    @classmethod
    def from_config(cls, config: EstateConfig, extra_event_alarms: tuple[EventAlarmSpec, ...] = ()) -> RuleEngine:
        from edge.rules.specs import specs_from_config

        return cls(specs_from_config(config, extra_event_alarms))

    def reconfigure(self, specs: RuleSpecs) -> None:
        """New limits after a config reload; open alarms stay open, running timers restart."""
        self._specs = specs
        self._points.clear()
        self._timers.clear()
        self._states = StateRules(specs.states, self._raise, self._clear, self._open)

    # ------------------------------------------------------------------ open alarms

    def restore(self, open_alarms: Iterable[OpenAlarm]) -> None:
        """Seed the open set from the store (``Store.open_alarms()``).

        A restored ``device.offline`` alarm also restores the failure streak, so the device must
        answer ``online_after_successes`` times before it clears.
        """
        for alarm in open_alarms:
            key = alarm.key
            raised = alarm.raised_at
            if key[0] == SENSOR_FAULT and key not in self._open:
                self._fault_open += 1
            self._open[key] = raised
            if key[0] == OFFLINE:
                spec = self._device_spec(key[1])
                self._devices[key[1]] = _DeviceState(failures=spec.offline_after_failures, successes=0)

    def open_alarms(self) -> list[AlarmKey]:
        return list(self._open)

    def is_open(self, code: str, subject: str, point: str | None = None) -> bool:
        return (code, subject, point) in self._open

    # ------------------------------------------------------------------ protocol used by the pipeline

    def on_readings(self, readings: Sequence[Reading]) -> list[AlarmTransition]:
        out: list[AlarmTransition] = []
        thresholds = self._specs.thresholds
        bad = Quality.BAD
        for reading in readings:
            # Fast path for the bulk of telemetry: no rule on the point, a valid value, no open fault.
            if (
                not self._fault_open
                and reading.quality is not bad
                and isfinite(reading.value)
                and _POINT_KEY(reading) not in thresholds
            ):
                continue
            out.extend(self._reading(reading))
        if self._states.specs:
            out.extend(self._states.on_readings(readings))
        return out

    def on_status(self, status: DeviceStatus) -> list[AlarmTransition]:
        return self.evaluate(status, status.ts)

    def on_events(self, events: Sequence[Event]) -> list[AlarmTransition]:
        out: list[AlarmTransition] = []
        for event in events:
            out.extend(self.evaluate(event, event.ts))
        return out

    def evaluate(self, item: Reading | DeviceStatus | Event, now: datetime) -> list[AlarmTransition]:
        if isinstance(item, Reading):
            return self._reading(item)
        if isinstance(item, DeviceStatus):
            return self._status(item)
        if isinstance(item, Event):
            return self._event(item, now)
        raise TypeError(f"rule engine cannot evaluate {type(item).__name__}")

    # ------------------------------------------------------------------ readings

    def _reading(self, r: Reading) -> list[AlarmTransition]:
        spec = self._specs.thresholds.get((r.device_id, r.point))
        out: list[AlarmTransition] = []
        state = self._points.get((r.device_id, r.point))
        if state is None:
            state = self._points[(r.device_id, r.point)] = _PointState()
        fault_key: AlarmKey = (SENSOR_FAULT, r.device_id, r.point)
        if _is_fault(r, spec):
            state.good_streak = 0
            if state.low_since is not None or state.high_since is not None:
                self._set_since(state, r.device_id, r.point, "low", None)
                self._set_since(state, r.device_id, r.point, "high", None)
            if fault_key not in self._open:
                severity = self._device_spec(r.device_id).severity
                out.append(
                    self._raise(
                        SENSOR_FAULT, r.device_id, r.point, r.ts, severity,
                        say(SENSOR_FAULT, device=r.device_id, point=r.point, value=_json_number(r.value),
                            unit=r.unit),
                        {"value": _json_number(r.value), "unit": r.unit, "quality": Quality(r.quality).label,
                         "valid_min": spec.valid_min if spec else None, "valid_max": spec.valid_max if spec else None},
                        r.device_id,
                    )
                )
            return out
        if fault_key in self._open:
            state.good_streak += 1
            if state.good_streak >= self._specs.sensor_fault_clear_after:
                out.append(self._clear(fault_key, r.ts, say("device.sensor_ok", device=r.device_id, point=r.point,
                                                            value=r.value, unit=r.unit),
                                       {"value": r.value, "unit": r.unit}, r.device_id))
        if spec is None:
            return out
        if spec.low is not None:
            out.extend(self._limit(spec, state, r, "low"))
        if spec.high is not None:
            out.extend(self._limit(spec, state, r, "high"))
        return out

    def _limit(self, spec: ThresholdSpec, state: _PointState, r: Reading, direction: str) -> list[AlarmTransition]:
        low = direction == "low"
        limit = spec.low if low else spec.high
        assert limit is not None
        code = spec.code_low if low else spec.code_high
        key: AlarmKey = (code, r.device_id, r.point)
        breached = r.value < limit if low else r.value > limit
        since = state.low_since if low else state.high_since
        data = {"value": r.value, "unit": r.unit or spec.unit, "limit": limit, "hysteresis": spec.hysteresis,
                "min_duration_s": spec.min_duration_s}
        if breached:
            if key in self._open:
                return []
            if since is None:
                since = r.ts
                self._set_since(state, r.device_id, r.point, direction, since)
            if (r.ts - since).total_seconds() >= spec.min_duration_s:
                return [
                    self._raise(
                        code, r.device_id, r.point, r.ts, spec.severity,
                        say("threshold.low" if low else "threshold.high", device=r.device_id, point=r.point,
                            value=r.value, unit=r.unit or spec.unit, limit=limit,
                            held_s=round((r.ts - since).total_seconds())),
                        {**data, "since": iso_z(since)},
                        r.device_id,
                    )
                ]
            return []
        if since is not None:
            self._set_since(state, r.device_id, r.point, direction, None)
        if key in self._open:
            recovered = r.value >= limit + spec.hysteresis if low else r.value <= limit - spec.hysteresis
            if recovered:
                text = say("threshold.recovered", device=r.device_id, point=r.point, value=r.value,
                           unit=r.unit or spec.unit)
                return [self._clear(key, r.ts, text, data, r.device_id)]
        return []

    def _set_since(self, state: _PointState, device_id: str, point: str, direction: str,
                   since: datetime | None) -> None:
        if direction == "low":
            state.low_since = since
        else:
            state.high_since = since
        if since is None:
            self._timers.pop((device_id, point, direction), None)
        else:
            self._timers[(device_id, point, direction)] = since

    # ------------------------------------------------------------------ pending timers

    def pending_timers(self) -> dict[TimerKey, datetime]:
        """The conditions waiting out their ``min_duration_s``, and since when (a copy).

        Thresholds (``"low"`` / ``"high"``) and state inputs (``STATE_TIMER``).
        """
        timers = dict(self._timers)
        for (device_id, point), since in self._states.pending_timers().items():
            timers[(device_id, point, STATE_TIMER)] = since
        return timers

    def restore_timers(self, timers: Mapping[TimerKey, datetime]) -> None:
        """Resume waits that were running before a restart; timers of points without a rule are dropped."""
        self._states.restore_timers({(d, p): since for (d, p, direction), since in timers.items()
                                     if direction == STATE_TIMER})
        for (device_id, point, direction), since in timers.items():
            if direction == STATE_TIMER:
                continue
            spec = self._specs.thresholds.get((device_id, point))
            if spec is None or (spec.low if direction == "low" else spec.high) is None:
                continue
            state = self._points.get((device_id, point))
            if state is None:
                state = self._points[(device_id, point)] = _PointState()
            self._set_since(state, device_id, point, direction, since)

    # ------------------------------------------------------------------ availability

    def _status(self, s: DeviceStatus) -> list[AlarmTransition]:
        """Per-device offline / online, grouped by link (GB/T 20299.3 8.1.8: no duplicate alarm reports).

        When every device behind one link (two or more) is failing, the link is down: one
        ``link.offline`` alarm is raised and the devices' own ``device.offline`` alarms are held
        under it. When the link comes back, devices that still fail get their own alarms then.
        """
        spec = self._device_spec(s.device_id)
        state = self._devices.get(s.device_id)
        if state is None:
            state = self._devices[s.device_id] = _DeviceState()
        if s.link is not None and state.link != s.link:
            if state.link is not None:
                self._links.get(state.link, set()).discard(s.device_id)
            state.link = s.link
            self._links.setdefault(s.link, set()).add(s.device_id)
        key: AlarmKey = (OFFLINE, s.device_id, None)
        if s.online:
            state.successes += 1
            state.failures = 0
            out = self._link_recovered(state.link, s.ts) if state.link is not None else []
            state.held = False
            if key in self._open and state.successes >= spec.online_after_successes:
                out.append(self._clear(key, s.ts, say("device.online", device=s.device_id),
                                       {"successes": state.successes}, s.device_id))
            return out
        state.failures += 1
        state.successes = 0
        if key in self._open or state.held or state.failures < spec.offline_after_failures:
            return []
        if state.link is not None and self._link_down(state.link):
            state.held = True
            return self._raise_link(state.link, s)
        return [self._raise_offline(s.device_id, s.ts, state.failures, s.error)]

    def _raise_offline(self, device_id: str, ts: datetime, failures: int, error: str | None) -> AlarmTransition:
        return self._raise(OFFLINE, device_id, None, ts, self._device_spec(device_id).severity,
                           say(OFFLINE, device=device_id, failures=failures),
                           {"failures": failures, "error": error}, device_id)

    def _link_down(self, link: str) -> bool:
        """Two or more devices behind ``link`` and every one of them failing right now."""
        members = self._links.get(link, set())
        return len(members) >= 2 and all(self._devices[d].failures > 0 for d in members)

    def _raise_link(self, link: str, s: DeviceStatus) -> list[AlarmTransition]:
        key: AlarmKey = (LINK_OFFLINE, link, None)
        if key in self._open:
            return []
        members = sorted(self._links[link])
        return [self._raise(LINK_OFFLINE, link, None, s.ts, self._device_spec(s.device_id).severity,
                            say(LINK_OFFLINE, device=members[0], devices=len(members)),
                            {"link": link, "devices": len(members), "device_ids": ",".join(members[:50]),
                             "error": s.error}, None)]

    def _link_recovered(self, link: str, ts: datetime) -> list[AlarmTransition]:
        """A device behind a down link answered: the link is up again.

        The devices held under it count their failures afresh from now (they were polled through
        a dead link until a moment ago); one that stays silent gets its own alarm after
        ``offline_after_failures`` more failures, as on any working link.
        """
        key: AlarmKey = (LINK_OFFLINE, link, None)
        if key not in self._open:
            return []
        for device_id in self._links.get(link, ()):
            member = self._devices[device_id]
            if member.held:
                member.held = False
                member.failures = 0
        members = sorted(self._links.get(link, ()))
        return [self._clear(key, ts, say("link.online", device=members[0] if members else "", devices=len(members)),
                            {"link": link}, None)]

    # ------------------------------------------------------------------ event-driven alarms

    def _event(self, e: Event, now: datetime) -> list[AlarmTransition]:
        spec = self._specs.event_alarms.get(e.code)
        if spec is None:
            return []
        subject = str(e.data.get(spec.subject_key) or e.device_id or "")
        if not subject:
            return []
        key: AlarmKey = (spec.alarm_code, subject, None)
        ts = e.ts or now
        data = {k: v for k, v in e.data.items() if isinstance(v, str | int | float | bool) or v is None}
        if e.data.get(spec.active_key, True):
            if key in self._open:
                return []
            raised = self._raise(spec.alarm_code, subject, None, ts, spec.severity, _event_text(e), data,
                                 e.device_id)
            # The alarm carries the event's evidence image, so staff and the platform see what was seen.
            return [replace(raised, evidence=e.evidence, evidence_local=e.evidence_local)] if e.evidence else [raised]
        if key not in self._open:
            return []
        return [self._clear(key, ts, _event_text(e), data, e.device_id)]

    # ------------------------------------------------------------------ helpers

    def _device_spec(self, device_id: str) -> DeviceSpec:
        spec = self._specs.devices.get(device_id)
        if spec is None:
            spec = DeviceSpec(
                device_id=device_id,
                category="other",
                offline_after_failures=self._specs.default_offline_after,
                online_after_successes=self._specs.default_online_after,
            )
        return spec

    def _raise(
        self, code: str, subject: str, point: str | None, ts: datetime, severity: Severity, text: MessageFields,
        data: dict[str, Any], device_id: str | None,
    ) -> AlarmTransition:
        self._open[(code, subject, point)] = ts
        if code == SENSOR_FAULT:
            self._fault_open += 1
        return AlarmTransition(
            code=code, subject=subject, kind=TransitionKind.RAISE, ts=ts, severity=severity, **text,
            device_id=device_id, point=point, data={**data, "subject": subject, "point": point},
        )

    def _clear(
        self, key: AlarmKey, ts: datetime, text: MessageFields, data: dict[str, Any], device_id: str | None,
    ) -> AlarmTransition:
        if self._open.pop(key, False) is not False and key[0] == SENSOR_FAULT:
            self._fault_open -= 1
        code, subject, point = key
        return AlarmTransition(
            code=code, subject=subject, kind=TransitionKind.CLEAR, ts=ts, severity=Severity.INFO, **text,
            device_id=device_id, point=point, data={**data, "subject": subject, "point": point},
        )


def _event_text(e: Event) -> MessageFields:
    """An event-driven alarm step says what its event said (same code, same parameters)."""
    if e.message_code:
        return {"message": e.message, "message_code": e.message_code, "params": dict(e.params)}
    return say("alarm.from_event", device=e.device_id or "")


def _is_fault(r: Reading, spec: ThresholdSpec | None) -> bool:
    if r.quality is Quality.BAD or not math.isfinite(r.value):
        return True
    if spec is None:
        return False
    return (spec.valid_min is not None and r.value < spec.valid_min) or (
        spec.valid_max is not None and r.value > spec.valid_max
    )


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None
