"""What the fire-alarm panel's messages mean for the gateway: decoded objects in, readings and events out.

Pure (no I/O, no clock): ``PanelState.apply(uitd_id, objects, ts)`` keeps the last status of every
component it has heard of and returns what changed:

* component run state (type 2): a change of the fire, fault, supervise or power-fault bit is an
  event ``gb26875.<state>`` with ``data.active`` true or false and ``data.component`` naming the
  component (``<uitd>/<system address>-<component address>``), which the rule engine turns into one
  alarm per component and state (``fire.alarm``, ``fire.component_fault`` ...). The message is for
  staff, in Chinese, with the panel's own GB18030 description of the component and its address;
  the numbers are in ``data``. Shield, start, feedback and delay changes are ``gb26875.component_state``
  events (information, no alarm);
* system state (type 1) with the reset bit: the panel was reset, so every active state of that
  system's components ends (a real panel does not send "normal" for each detector after a reset);
* component analog value (type 3): a reading. When the installer mapped the component to a device
  of its own (``options.uitd`` + ``options.component``), the reading is that device's, under the
  quantity's name (``pressure`` in MPa, ``level`` in m ...), so the hydrant-pressure rules and
  indicators apply exactly as to a transmitter on a Modbus line; otherwise it is the transmission
  device's, as ``<quantity>.<system>-<component>``;
* the transmission device's own run state (type 21): a change of its fault bits is an event
  ``gb26875.uitd_state`` (information).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from drivers.gb26875 import codec
from edge.clock import iso_z
from edge.messages import say
from edge.records import Event, Quality, Reading, Severity
from edge.units import UnitError, canonical_unit, convert

RESET_BIT = 13

# component status bit -> (event state name, Chinese label, severity)
ALARM_STATES: dict[int, tuple[str, str, Severity]] = {
    1: ("fire", "火警", Severity.CRITICAL),
    2: ("fault", "故障", Severity.MAJOR),
    4: ("supervise", "监管", Severity.MAJOR),
    8: ("power_fault", "电源故障", Severity.MAJOR),
}
INFO_STATES: dict[int, str] = {3: "屏蔽", 5: "启动", 6: "反馈", 7: "延时"}
# Message codes (edge.messages) of each alarm state: (active, back to normal).
_STATE_CODES: dict[str, tuple[str, str]] = {
    "fire": ("gb26875.fire", "gb26875.fire_cleared"),
    "fault": ("gb26875.fault", "gb26875.fault_cleared"),
    "supervise": ("gb26875.supervise", "gb26875.supervise_cleared"),
    "power_fault": ("gb26875.power_fault", "gb26875.power_fault_cleared"),
}
UITD_STATE_NAMES: dict[str, str] = {
    "fire": "火警", "fault": "故障", "main_power_fault": "主电故障", "backup_power_fault": "备电故障",
    "centre_line_fault": "与监控中心通信故障", "monitor_line_fault": "监测线路故障",
}


@dataclass(slots=True)
class _Component:
    status: int = 0
    description: str = ""
    part_type: int = 0
    system_type: int = 0


@dataclass(slots=True)
class PanelState:
    """Last known status per component; ``mapped`` routes a component's readings to its own device."""

    bus_id: str
    mapped: dict[tuple[str, int, int], str] = field(default_factory=dict)  # (uitd, sys, part) -> device id
    components: dict[tuple[str, int, int], _Component] = field(default_factory=dict)
    uitd_status: dict[str, int] = field(default_factory=dict)
    tz: tzinfo = UTC  # the panel's clock is local wall time in the estate's zone; data carries it as UTC "Z"

    def apply(self, uitd_id: str, objects: list[codec.InfoObject], ts: datetime) -> tuple[list[Reading], list[Event]]:
        readings: list[Reading] = []
        events: list[Event] = []
        for obj in objects:
            if isinstance(obj, codec.ComponentState):
                events.extend(self._component(uitd_id, obj, ts))
            elif isinstance(obj, codec.ComponentAnalog):
                reading = self._analog(uitd_id, obj, ts)
                if reading is not None:
                    readings.append(reading)
            elif isinstance(obj, codec.SystemState) and obj.status >> RESET_BIT & 1:
                events.extend(self._reset(uitd_id, obj.system_address, ts))
            elif isinstance(obj, codec.UitdState):
                events.extend(self._uitd(uitd_id, obj, ts))
        return readings, events

    # ------------------------------------------------------------------ components

    def _component(self, uitd_id: str, obj: codec.ComponentState, ts: datetime) -> list[Event]:
        key = (uitd_id, obj.system_address, obj.part_address)
        known = self.components.get(key)
        if known is None:
            known = self.components[key] = _Component()
        old, new = known.status, obj.status
        known.status = new
        known.description = obj.description or known.description
        known.part_type, known.system_type = obj.part_type, obj.system_type
        changed = old ^ new
        events = [self._alarm_event(uitd_id, key, known, bit, bool(new >> bit & 1), ts, obj.time)
                  for bit in ALARM_STATES if changed >> bit & 1]
        info = [label for bit, label in INFO_STATES.items() if changed >> bit & 1]
        if info:
            states = codec.status_names(new, codec.COMPONENT_BITS)
            events.append(Event(
                code="gb26875.component_state", ts=ts, device_id=self.mapped.get(key, uitd_id), severity=Severity.INFO,
                **say("gb26875.component_state", **self._where(key, known), changes="、".join(info)),
                data={**self._data(uitd_id, key, known, obj.time), "states": ",".join(states)},
            ))
        return events

    def _alarm_event(self, uitd_id: str, key: tuple[str, int, int], known: _Component, bit: int, active: bool,
                     ts: datetime, device_time: datetime | None) -> Event:
        state, _label, severity = ALARM_STATES[bit]
        return Event(
            code=f"gb26875.{state}", ts=ts, device_id=self.mapped.get(key, uitd_id),
            severity=severity if active else Severity.INFO,
            **say(_STATE_CODES[state][0 if active else 1], **self._where(key, known)),
            data={**self._data(uitd_id, key, known, device_time), "active": active, "state": state},
        )

    def _reset(self, uitd_id: str, system_address: int, ts: datetime) -> list[Event]:
        events: list[Event] = []
        for key, known in self.components.items():
            if key[0] != uitd_id or key[1] != system_address:
                continue
            for bit in ALARM_STATES:
                if known.status >> bit & 1:
                    events.append(self._alarm_event(uitd_id, key, known, bit, False, ts, None))
            known.status = 0
        return events

    @staticmethod
    def _where(key: tuple[str, int, int], known: _Component) -> dict[str, object]:
        """Message parameters naming a component: its description from the panel, system and part address."""
        return {"description": known.description, "system": key[1], "part": key[2]}

    def _data(self, uitd_id: str, key: tuple[str, int, int], known: _Component,
              device_time: datetime | None) -> dict[str, object]:
        return {
            "bus": self.bus_id, "uitd": uitd_id, "component": f"{uitd_id}/{key[1]}-{key[2]}",
            "system_type": known.system_type, "system_address": key[1], "part_type": known.part_type,
            "part_address": key[2], "description": known.description,
            "device_time": iso_z(device_time.replace(tzinfo=self.tz)) if device_time else None,
        }

    # ------------------------------------------------------------------ analog values

    def _analog(self, uitd_id: str, obj: codec.ComponentAnalog, ts: datetime) -> Reading | None:
        kind = codec.ANALOG_TYPES.get(obj.analog_type)
        if kind is None:
            return None
        name, unit, _ = kind
        value = obj.value
        try:
            target = canonical_unit(unit)
            value = convert(value, unit, target)
        except UnitError:
            target = unit  # a quantity the gateway has no canonical unit for (%LEL, m³/min): as sent
        key = (uitd_id, obj.system_address, obj.part_address)
        device = self.mapped.get(key)
        if device is not None:
            return Reading(device, name, value, target, ts, Quality.GOOD)
        return Reading(uitd_id, f"{name}.{obj.system_address}-{obj.part_address}", value, target, ts, Quality.GOOD)

    # ------------------------------------------------------------------ the transmission device itself

    def _uitd(self, uitd_id: str, obj: codec.UitdState, ts: datetime) -> list[Event]:
        old = self.uitd_status.get(uitd_id, 1)
        self.uitd_status[uitd_id] = obj.status
        if (old ^ obj.status) & ~1 == 0:
            return []
        names = codec.status_names(obj.status, codec.UITD_BITS)
        return [Event(code="gb26875.uitd_state", ts=ts, device_id=uitd_id,
                      severity=Severity.WARNING if names else Severity.INFO,
                      **say("gb26875.uitd_state", device=uitd_id,
                            states="、".join(UITD_STATE_NAMES.get(n, n) for n in names) or "正常"),
                      data={"bus": self.bus_id, "status": obj.status, "states": ",".join(names)})]
