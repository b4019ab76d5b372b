"""The demo's Modbus simulator scenario serves every Modbus device of the demo estate at its unit id with
its profile, and the demo's state rules (DI channels, lift box) name points their profiles have."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.modbus.profile import ProfileLibrary
from edge.config import load_config
from simulators.modbus.scenario import load_scenario

REPO = Path(__file__).resolve().parents[3]


def test_demo_scenario_matches_the_demo_estate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_SECRET_PLATFORM_CLIENT_SECRET", "x")
    monkeypatch.setenv("EDGE_SECRET_CAMERA_PASSWORD", "y")
    config = load_config(REPO / "config" / "demo-estate.yaml")
    scenario = load_scenario(REPO / "simulators" / "modbus" / "scenarios" / "demo.yaml")
    kinds = {b.id: b.kind for b in config.buses}
    served = {d.id: (kind, d.unit_id, d.profile)
              for kind, groups in (("modbus_tcp", scenario.tcp), ("modbus_rtu", scenario.rtu))
              for g in groups for d in g.devices}
    library = ProfileLibrary([])
    modbus = [d for d in config.devices if kinds[d.bus] in ("modbus_tcp", "modbus_rtu")]
    assert {"B1-DI-01", "B2-LIFT-01"} <= {d.id for d in modbus}
    for device in modbus:
        assert served.get(device.id) == (kinds[device.bus], device.unit_id, device.profile), device.id
        points = library.get(device.profile or "").points
        for point, rule in device.states.items():
            assert point in points and set(rule.context) <= set(points), (device.id, point)
    alarms = {rule.alarm for d in modbus for rule in d.states.values()}
    assert alarms == {"fire.door_open", "fire.hydrant_cabinet_open", "water.ingress", "power.breaker_trip",
                      "elevator.fault", "elevator.trapped"}
    cued = {(c.device, c.point) for c in scenario.cues if c.action == "set"}
    assert {("B1-DI-01", "di1"), ("B2-LIFT-01", "fault_code"), ("B2-LIFT-01", "trapped")} <= cued
