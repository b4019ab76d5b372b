"""Value models: what a simulated meter or sensor measures at a given simulated time.

* ``MeterModel``: power follows a residential daily load curve (night trough, morning and evening
  peaks) between ``base_kw`` and ``peak_kw``; energy counts up by integrating it, so the kWh a
  day adds up to are consistent with the power readings.
* ``WaterModel``: flow follows a daily curve (morning and evening peaks, a small night flow);
  the volume register integrates it.
* ``GaugeModel``: one main quantity (hydrant pressure in MPa, tank level in m) with a little noise,
  an optional drift per hour (a tank that slowly empties), and ramps on cue.

* ``StateModel``: contact inputs (a DI module's channels) and other state points: each holds its
  starting value (``model: {di3: 1}``, default 0) until a ``set`` cue changes it, without noise.
* ``LiftModel``: a lift box's lift travels between random floors (``lowest`` .. ``highest``, no
  floor 0: B1 = -1), ``floor_s`` real seconds per floor, the door open ``dwell_s`` at each stop;
  a fault code or a trapped passenger (``set`` cues) stops it where it is, door closed, until the
  cue is taken back.

Models answer ``values(sim_ts, dt_h)`` with every emitted point of the profile in the point's own
unit; ``dt_h`` is the simulated time since the last call (hours), used to integrate counters.
Random noise comes from a per-device seeded generator, so a scenario replays identically.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime

from drivers.modbus.profile import Profile


def _bump(h: float, centre: float, width: float) -> float:
    d = min(abs(h - centre), 24 - abs(h - centre))
    return math.exp(-((d / width) ** 2))


def residential_load(hour: float) -> float:
    """Share (0..1) of peak load at a local hour: trough at night, peaks around 07:30 and 20:00."""
    return min(1.0, 0.12 + 0.45 * _bump(hour, 7.5, 1.3) + 0.25 * _bump(hour, 12.5, 1.5) + 0.88 * _bump(hour, 20.0, 2.0))


def water_demand(hour: float) -> float:
    return min(1.0, 0.04 + 0.9 * _bump(hour, 7.0, 1.2) + 0.35 * _bump(hour, 12.0, 1.2) + 0.8 * _bump(hour, 20.5, 1.6))


@dataclass(slots=True)
class Ramp:
    start: float
    target: float
    t0: float  # real monotonic seconds
    duration: float

    def at(self, now: float) -> tuple[float, bool]:
        if self.duration <= 0 or now >= self.t0 + self.duration:
            return self.target, True
        share = max(0.0, (now - self.t0) / self.duration)
        return self.start + (self.target - self.start) * share, False


class ValueModel:
    """Base: holds point overrides set by cues (``set``, ``ramp``)."""

    def __init__(self, profile: Profile, params: dict[str, float | str], rng: random.Random) -> None:
        self.profile = profile
        self.params = params
        self.rng = rng
        self.emitted = [n for n, p in profile.points.items() if p.emit]
        self.overrides: dict[str, float] = {}
        self.ramps: dict[str, Ramp] = {}

    def param(self, name: str, default: float) -> float:
        return float(self.params.get(name, default))

    def main_point(self) -> str:
        return self.emitted[0]

    def current(self, point: str, sim_ts: datetime, now: float) -> float:
        return self.values(sim_ts, 0.0, now).get(point, 0.0)

    def ramp(self, point: str, target: float, over: float, now: float, sim_ts: datetime) -> None:
        start = self.current(point, sim_ts, now)
        self.ramps[point] = Ramp(start, target, now, over)

    def set(self, point: str, value: float) -> None:
        self.ramps.pop(point, None)
        self.overrides[point] = value

    def replace(self, value: float) -> None:
        """A new meter: counters restart at ``value``."""

    def values(self, sim_ts: datetime, dt_h: float, now: float) -> dict[str, float]:
        raise NotImplementedError

    def _apply_cues(self, out: dict[str, float], now: float) -> dict[str, float]:
        for point, ramp in list(self.ramps.items()):
            value, done = ramp.at(now)
            out[point] = value
            if done:
                del self.ramps[point]
                self.overrides[point] = value
        for point, value in self.overrides.items():
            if point not in self.ramps:
                out[point] = value
        return out


_LINE_TO_LINE = ("_ab", "_bc", "_ca", "_l1_l2", "_l2_l3", "_l3_l1")


class MeterModel(ValueModel):
    def __init__(self, profile: Profile, params: dict[str, float | str], rng: random.Random) -> None:
        super().__init__(profile, params, rng)
        self.base_kw = self.param("base_kw", 2.0)
        self.peak_kw = self.param("peak_kw", 12.0)
        self.pf = self.param("pf", 0.95)
        self.volts = self.param("voltage", 220.0)
        self.energy = self.param("energy", 1000.0 + rng.random() * 50_000)
        self.export = self.param("export", 0.0)
        names = profile.points
        self.phases = 3 if any(n.endswith(("_a", "_l1", "_b", "_l2")) for n in names) else 1

    def main_point(self) -> str:
        return "energy_import" if "energy_import" in self.profile.points else self.emitted[0]

    def replace(self, value: float) -> None:
        self.energy = value
        self.export = 0.0
        for point in [p for p in self.overrides if "energy" in p]:
            del self.overrides[point]

    def values(self, sim_ts: datetime, dt_h: float, now: float) -> dict[str, float]:
        hour = sim_ts.hour + sim_ts.minute / 60 + sim_ts.second / 3600
        kw = (self.base_kw + (self.peak_kw - self.base_kw) * residential_load(hour)) * (1 + 0.03 * self.rng.uniform(-1, 1))
        if "energy_import" in self.overrides:
            self.energy = self.overrides.pop("energy_import")
        self.energy += kw * dt_h
        pf = min(1.0, self.pf + 0.01 * self.rng.uniform(-1, 1))
        watts = kw * 1000
        var = watts * math.tan(math.acos(pf))
        va = watts / pf
        phase_v = self.volts * (1 + 0.01 * self.rng.uniform(-1, 1))
        amps = watts / (self.phases * phase_v * pf)
        out: dict[str, float] = {}
        for name in self.emitted:
            per_phase = self.phases > 1 and name.endswith(("_a", "_b", "_c", "_l1", "_l2", "_l3"))
            share = 1 / self.phases if per_phase else 1.0
            if name.startswith("voltage"):
                out[name] = phase_v * (math.sqrt(3) if name.endswith(_LINE_TO_LINE) else 1.0)
            elif name.startswith("current"):
                out[name] = amps
            elif name.startswith("active_power"):
                out[name] = watts * share
            elif name.startswith("reactive_power"):
                out[name] = var * share
            elif name.startswith("apparent_power"):
                out[name] = va * share
            elif name.startswith("power_factor"):
                out[name] = pf
            elif name == "phase_angle":
                out[name] = math.degrees(math.acos(pf))
            elif name == "frequency":
                out[name] = 50.0 + 0.02 * self.rng.uniform(-1, 1)
            elif name.startswith("reactive_energy"):
                out[name] = self.energy * 0.2 * share
            elif name.startswith("energy_export"):
                out[name] = self.export * share
            elif name.startswith("energy"):
                out[name] = self.energy * share
            else:
                out[name] = 0.0
        return self._apply_cues(out, now)


class WaterModel(ValueModel):
    def __init__(self, profile: Profile, params: dict[str, float | str], rng: random.Random) -> None:
        super().__init__(profile, params, rng)
        self.base = self.param("base_m3h", 0.01)
        self.peak = self.param("peak_m3h", 1.2)
        self.volume = self.param("volume", 100.0 + rng.random() * 2000)

    def main_point(self) -> str:
        return "volume_forward" if "volume_forward" in self.profile.points else self.emitted[0]

    def replace(self, value: float) -> None:
        self.volume = value
        self.overrides.pop("volume_forward", None)

    def values(self, sim_ts: datetime, dt_h: float, now: float) -> dict[str, float]:
        hour = sim_ts.hour + sim_ts.minute / 60
        if "flow" in self.overrides:
            flow = self.overrides["flow"]
        else:
            flow = max(0.0, (self.base + (self.peak - self.base) * water_demand(hour)) * (1 + 0.05 * self.rng.uniform(-1, 1)))
        if "volume_forward" in self.overrides:
            self.volume = self.overrides.pop("volume_forward")
        self.volume += flow * dt_h
        known = {
            "volume_forward": self.volume,
            "volume_reverse": 0.0,
            "flow": flow,
            "pipe_state": 0xAA,
            "pressure": self.param("pressure", 0.28),
            "temperature": self.param("temperature", 14.0),
            "battery_voltage": self.param("battery", 3.6),
            "valve_state": 1,
        }
        return self._apply_cues({n: known.get(n, 0.0) for n in self.emitted}, now)


class GaugeModel(ValueModel):
    """One quantity with noise and drift: hydrant pressure (MPa), tank level (m), anything else."""

    def __init__(self, profile: Profile, params: dict[str, float | str], rng: random.Random) -> None:
        super().__init__(profile, params, rng)
        self.main = str(params.get("point", self.emitted[0]))
        self.value = self.param("value", 0.3 if profile.category == "fire_pressure" else 3.0)
        self.noise = self.param("noise", 0.002 if profile.category == "fire_pressure" else 0.005)
        self.drift_per_h = self.param("drift_per_h", 0.0)

    def main_point(self) -> str:
        return self.main

    def values(self, sim_ts: datetime, dt_h: float, now: float) -> dict[str, float]:
        self.value += self.drift_per_h * dt_h
        if self.main in self.overrides and self.main not in self.ramps:
            self.value = self.overrides.pop(self.main)
        out = {n: 0.0 for n in self.emitted}
        out[self.main] = self.value
        out = self._apply_cues(out, now)
        if self.main in self.ramps:
            self.value = out[self.main]
        elif self.main in self.overrides:
            self.value = self.overrides.pop(self.main)
            out[self.main] = self.value
        out[self.main] += self.noise * self.rng.uniform(-1, 1)
        return out


class StateModel(ValueModel):
    """Every emitted point holds a value (0 unless the scenario says) until a cue sets another."""

    def main_point(self) -> str:
        return self.emitted[0]

    def values(self, sim_ts: datetime, dt_h: float, now: float) -> dict[str, float]:
        return self._apply_cues({n: self.param(n, 0.0) for n in self.emitted}, now)


# Codes of the lift box template (drivers/modbus/profiles/generic_lift_box.yaml).
LIFT_STOP, LIFT_UP, LIFT_DOWN = 0, 1, 2
DOOR_CLOSED, DOOR_OPEN = 0, 1
LIFT_POINTS = frozenset({"fault_code", "floor", "door_state", "direction", "trapped"})


class LiftModel(ValueModel):
    """A lift serving random calls; faults and trapped passengers (cues) stop it at its floor."""

    def __init__(self, profile: Profile, params: dict[str, float | str], rng: random.Random) -> None:
        super().__init__(profile, params, rng)
        self.lowest = int(self.param("lowest", -1))
        self.highest = int(self.param("highest", 18))
        self.floor_s = self.param("floor_s", 2.0)
        self.dwell_s = self.param("dwell_s", 3.0)
        self.floor = int(self.param("floor", 1))
        self.target = self.floor
        self.direction = LIFT_STOP
        self.door = DOOR_OPEN
        self._next: float | None = None  # real monotonic time of the next step

    def main_point(self) -> str:
        return "fault_code"

    def _halted(self) -> bool:
        return bool(self.overrides.get("fault_code")) or bool(self.overrides.get("trapped"))

    def _step_floor(self) -> None:
        step = 1 if self.direction == LIFT_UP else -1
        self.floor += step
        if self.floor == 0:  # there is no floor 0: B1 is followed by 1
            self.floor += step

    def _new_target(self) -> int:
        floors = [f for f in range(self.lowest, self.highest + 1) if f not in (0, self.floor)]
        return self.rng.choice(floors) if floors else self.floor

    def _advance(self, now: float) -> None:
        if self._next is None:
            self._next = now + self.dwell_s
        if self._halted():  # stopped where it is, door shut, until the fault is cleared
            self.direction, self.door, self._next = LIFT_STOP, DOOR_CLOSED, now + self.dwell_s
            return
        while now >= self._next:
            if self.direction == LIFT_STOP:  # the dwell is over: close the door and go
                self.target = self._new_target()
                if self.target == self.floor:
                    self._next += self.dwell_s
                    continue
                self.door = DOOR_CLOSED
                self.direction = LIFT_UP if self.target > self.floor else LIFT_DOWN
                self._next += self.floor_s
                continue
            self._step_floor()
            if self.floor == self.target:
                self.direction, self.door = LIFT_STOP, DOOR_OPEN
                self._next += self.dwell_s
            else:
                self._next += self.floor_s

    def values(self, sim_ts: datetime, dt_h: float, now: float) -> dict[str, float]:
        if "floor" in self.overrides:  # a cue put the car at a floor (e.g. before a scripted fault)
            self.floor = self.target = int(self.overrides.pop("floor"))
            self.direction, self._next = LIFT_STOP, now + self.dwell_s
        self._advance(now)
        out = {n: 0.0 for n in self.emitted}
        out.update({"floor": float(self.floor), "door_state": float(self.door), "direction": float(self.direction),
                    "fault_code": 0.0, "trapped": 0.0})
        return self._apply_cues({n: out[n] for n in self.emitted}, now)


def model_for(profile: Profile, params: dict[str, float | str], rng: random.Random) -> ValueModel:
    kind = str(params.get("kind", profile.category))
    if kind == "lift" or (kind == "other" and set(profile.points) >= LIFT_POINTS):
        return LiftModel(profile, params, rng)
    if kind == "state" or all(p.type.value == "bit" for p in profile.points.values()):
        return StateModel(profile, params, rng)
    if kind == "electricity":
        return MeterModel(profile, params, rng)
    if kind == "water":
        return WaterModel(profile, params, rng)
    return GaugeModel(profile, params, rng)
