"""Estate-wide default thresholds; a device's own ``thresholds`` override them.

GB 50974-2014 5.2.2 asks at least 0.07 MPa static pressure at the most unfavourable point for
residential buildings (and multi-storey / class-2 public), 0.10 MPa for class-1 high-rise public
buildings and sprinkler systems (see shared/docs/devices.md section 6).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.config.common import Section

BuildingClass = Literal["residential", "public_class2", "public_class1", "public_over_100m", "sprinkler"]

HYDRANT_MIN_MPA_BY_CLASS: dict[str, float] = {
    "residential": 0.07,
    "public_class2": 0.07,
    "public_class1": 0.10,
    "public_over_100m": 0.15,
    "sprinkler": 0.10,
}


class ThresholdDefaults(Section):
    building_class: BuildingClass = Field(
        "residential", description="Default building class; picks the minimum hydrant pressure (GB 50974 5.2.2)."
    )
    building_classes: dict[str, BuildingClass] = Field(
        default_factory=dict, description="Per-building override of the class, keyed by location.building."
    )
    fire_pressure_min_duration_s: float = Field(30.0, ge=0, description="Low pressure must last this long to alarm.")
    offline_after_failures: int = Field(3, ge=1, description="Consecutive failed polls before a device is offline.")
    online_after_successes: int = Field(2, ge=1, description="Consecutive good polls before it is back online.")
    fire_pressure_hysteresis_mpa: float = Field(
        0.01, ge=0, description="Hydrant low-pressure alarm clears only above the minimum plus this, MPa."
    )
    fire_pressure_valid_range_mpa: tuple[float, float] = Field(
        (-0.02, 4.0), description="Outside this a pressure transmitter is faulty (broken loop, overrange), MPa."
    )
    fire_level_valid_range_m: tuple[float, float] = Field(
        (-0.05, 50.0), description="Outside this a level transmitter is faulty, m."
    )

    def hydrant_min_mpa(self, building: str | None) -> float:
        cls = self.building_classes.get(building or "", self.building_class)
        return HYDRANT_MIN_MPA_BY_CLASS[cls]
