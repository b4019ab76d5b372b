"""The simulator's contact inputs and lift: inputs hold until a cue, the lift travels floor by floor
(never to floor 0), stops with its door shut on a fault or a trapped passenger and runs on after."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from itertools import pairwise

from drivers.modbus.codec import unpack_bits
from drivers.modbus.profile import ProfileLibrary
from simulators.modbus.device import SimClock, SimDevice
from simulators.modbus.models import LIFT_DOWN, LIFT_STOP, LIFT_UP, LiftModel, StateModel, model_for
from simulators.modbus.scenario import SimDeviceSpec

LIB = ProfileLibrary([])
T = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_models_are_chosen_by_profile() -> None:
    assert isinstance(model_for(LIB.get("generic_di8_module"), {}, random.Random(0)), StateModel)
    assert isinstance(model_for(LIB.get("generic_lift_box"), {}, random.Random(0)), LiftModel)


def test_lift_travels_floor_by_floor_skipping_zero_and_halts_on_a_fault() -> None:
    lift = LiftModel(LIB.get("generic_lift_box"), {"floor": -1, "lowest": -1, "highest": 3, "floor_s": 1,
                                                   "dwell_s": 1}, random.Random(3))
    seen = []
    for t in range(200):
        v = lift.values(T, 0.0, float(t) / 2)
        seen.append((int(v["floor"]), int(v["direction"]), int(v["door_state"])))
    floors = [f for f, _, _ in seen]
    assert 0 not in floors and set(floors) == {-1, 1, 2, 3}
    assert all(abs(b - a) <= 1 or {a, b} == {-1, 1} for a, b in pairwise(floors))  # B1 -> 1 is one floor
    assert {d for _, d, _ in seen} == {LIFT_STOP, LIFT_UP, LIFT_DOWN}
    assert all(door == 0 for _, d, door in seen if d != LIFT_STOP)  # never moves with the door open
    lift.set("floor", 12)
    lift.set("fault_code", 5)
    for t in range(200, 220):
        v = lift.values(T, 0.0, float(t) / 2)
        assert (v["floor"], v["fault_code"], v["direction"], v["door_state"]) == (12, 5, LIFT_STOP, 0)
    lift.set("fault_code", 0)
    after = {lift.values(T, 0.0, float(t) / 2)["floor"] for t in range(220, 260)}
    assert len(after) > 1  # in service again


def test_di_device_answers_packed_bits_and_refuses_what_it_lacks() -> None:
    clock = SimClock(T, 1.0, 0.0)
    spec = SimDeviceSpec(id="di", unit_id=1, profile="generic_di8_module", model={"di1": 1, "di8": 1})
    di = SimDevice(spec, 1, "di", LIB.get("generic_di8_module"), clock, 0)
    answer = di.answer(2, 0, 8, 0.0)
    assert answer.kind == "data" and unpack_bits(answer.data, 8) == [1, 0, 0, 0, 0, 0, 0, 1]
    di.model.set("di3", 1)
    di._built_at = None
    assert di.answer(2, 1, 3, 1.0).data == b"\x02"  # inputs 1..3: only input 2 (di3) set
    assert di.answer(2, 0, 16, 1.0).data == b"\x85\x00"  # inputs beyond the eight read 0
    assert (di.answer(1, 0, 8, 1.0).kind, di.answer(1, 0, 8, 1.0).code) == ("exception", 2)  # no coils
    assert di.answer(2, 0, 2001, 1.0).code == 3  # more than a read may ask for
    meter_spec = SimDeviceSpec(id="m", unit_id=2, profile="eastron_sdm120")
    meter = SimDevice(meter_spec, 2, "m", LIB.get("eastron_sdm120"), clock, 0)
    assert meter.answer(2, 0, 8, 0.0).code == 1  # a meter has no inputs at all: illegal function
