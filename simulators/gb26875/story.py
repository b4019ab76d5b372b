"""The scripted fire-panel story the simulated device plays (the demo's and the tests' panel).

Each step is (pause before it, seconds at speed 1; what the panel reports; why). The story:
the panel and the device report normal, a hydrant's pressure is reported, a smoke detector on the
12th floor of 3栋 goes to fire and the panel is reset, a water-flow indicator in the basement
reports a fault that is then repaired, and a manual call point's zone is shielded for works.
"""

from __future__ import annotations

from datetime import datetime

from drivers.gb26875 import codec

FIRE_ALARM_SYSTEM = 1  # system type: 火灾报警系统
SMOKE_DETECTOR, FLOW_INDICATOR, CALL_POINT, PRESSURE_SENSOR = 21, 85, 23, 33  # part types (GB/T 26875.3 table)

NORMAL = 1  # bit 0: normal operation (not test)
FIRE, FAULT, SHIELD = 1 << 1, 1 << 2, 1 << 3
RESET = 1 << 13

SMOKE = (1, 2017, "3栋12层 感烟探测器")
FLOW = (1, 3005, "2栋B1 水流指示器")
CALL = (1, 4001, "1栋1层 手动报警按钮")
HYDRANT = (1, 5001)


def component(which: tuple[int, int, str], part_type: int, status: int) -> codec.ComponentState:
    system_address, part_address, text = which
    return codec.ComponentState(FIRE_ALARM_SYSTEM, system_address, part_type, part_address, status, text,
                                datetime.now())


def pressure_kpa(kpa: float) -> codec.ComponentAnalog:
    return codec.ComponentAnalog(FIRE_ALARM_SYSTEM, HYDRANT[0], PRESSURE_SENSOR, HYDRANT[1], 5, round(kpa * 10),
                                 datetime.now())


def system(status: int) -> codec.SystemState:
    return codec.SystemState(FIRE_ALARM_SYSTEM, 1, status, datetime.now())


def story() -> list[tuple[float, list[codec.InfoObject], str]]:
    return [
        (0.0, [codec.UitdState(NORMAL, datetime.now())], "device normal"),
        (0.5, [system(NORMAL)], "panel normal"),
        (0.5, [pressure_kpa(350.0)], "hydrant pressure 0.35 MPa"),
        (1.0, [component(SMOKE, SMOKE_DETECTOR, NORMAL | FIRE)], "smoke detector: fire"),
        (3.0, [system(NORMAL | RESET)], "panel reset: the fire clears"),
        (1.0, [component(FLOW, FLOW_INDICATOR, NORMAL | FAULT)], "flow indicator: fault"),
        (3.0, [component(FLOW, FLOW_INDICATOR, NORMAL)], "flow indicator repaired"),
        (1.0, [component(CALL, CALL_POINT, NORMAL | SHIELD)], "call point zone shielded"),
        (1.0, [pressure_kpa(120.0)], "hydrant pressure drops to 0.12 MPa"),
    ]
