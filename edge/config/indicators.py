"""Indicator computation (hour / day / month records for the platform) and abnormal-energy-use rules.

Periods are aligned to the estate's time zone (``estate.timezone``). A period's records are computed
``close_delay_s`` after it ends, so that the last polls of the period have landed; data that arrives
later still revises the record (same key, higher version) for ``revise_days``.
"""

from __future__ import annotations

from datetime import time
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.config.common import Section

EnergyCategory = Literal["electricity", "water"]


class EnergyWatchConfig(Section):
    """Abnormal consumption (004 8.4.8 b)-c)): night flow, monthly quota, sudden jumps. Units: kWh and m³."""

    night_start: time = Field(time(1, 0), description="Local start of the night window (leak watch).")
    night_end: time = Field(time(5, 0), description="Local end of the night window.")
    night_categories: list[EnergyCategory] = Field(
        default_factory=lambda: list[EnergyCategory](["water"]), description="Meter categories watched for continuous night flow."
    )
    night_interval_min: int = Field(
        15, ge=1, le=120, description="Consumption is judged per interval of this many minutes."
    )
    night_min_duration_min: float = Field(
        120, gt=0, le=1440,
        description="Raise energy.night_flow when every interval for this long in the night window had flow.",
    )
    night_flow_min: float = Field(
        0.0, ge=0, description="Consumption per interval above this counts as flow (m³ or kWh)."
    )
    monthly_quota: dict[str, float] = Field(
        default_factory=dict,
        description="Monthly quota in the meter's unit, keyed by device id or 'sub_item:<tag>'; "
        "month-to-date consumption above it raises energy.over_quota until the month ends.",
    )
    quarterly_quota: dict[str, float] = Field(
        default_factory=dict,
        description="Quarterly quota (local calendar quarters), keyed like monthly_quota; quarter-to-date "
        "consumption above it raises energy.over_quota until the quarter ends (004 8.4.8 c)).",
    )
    yearly_quota: dict[str, float] = Field(
        default_factory=dict,
        description="Yearly quota (local calendar year), keyed like monthly_quota; year-to-date consumption "
        "above it raises energy.over_quota until the year ends.",
    )
    quota_warn_ratio: float | None = Field(
        0.9, gt=0, lt=1,
        description="Warn (energy.quota_warning) once consumption reaches this share of a quota, before the "
        "limit; null: no warning.",
    )
    jump_factor: float = Field(
        4.0, gt=1, description="A window's consumption rate above this multiple of the meter's baseline is a jump."
    )
    jump_min_rate: dict[EnergyCategory, float] = Field(
        default_factory=lambda: dict[EnergyCategory, float]({"electricity": 10.0, "water": 1.0}),
        description="Ignore jumps below this rate (kWh/h, m³/h): small meters are noisy.",
    )
    jump_window_min: float = Field(15, gt=0, le=240, description="Window over which the rate is measured, minutes.")
    jump_baseline_hours: float = Field(
        24, gt=0, le=24 * 31, description="Time constant of the meter's baseline rate (exponential average), hours."
    )

    @field_validator("night_start", "night_end", mode="before")
    @classmethod
    def _yaml_sexagesimal(cls, value: object) -> object:
        # YAML 1.1 reads an unquoted 23:30 as the base-60 integer 1410 (minutes): take it as meant.
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            return time(value // 60, value % 60)
        return value


class IndicatorsConfig(Section):
    enabled: bool = Field(True, description="Compute and upload indicator records.")
    interval_s: float = Field(
        30, gt=0, le=3600, description="How often new data is folded in and due periods are computed, seconds."
    )
    close_delay_s: float = Field(
        120, ge=0, le=86400, description="A period is computed this long after it ends (late polls land first)."
    )
    backfill_hours: int = Field(
        72, ge=1, le=24 * 62,
        description="After a restart, records missing for periods that ended up to this far back are computed.",
    )
    revise_days: float = Field(
        40, gt=0, le=400, description="Late data for a period older than this no longer produces a new version."
    )
    retention_days: float = Field(
        62, ge=32, le=800, description="The hourly series behind the indicators is kept this long."
    )
    counter_points: dict[str, str] = Field(
        default_factory=dict,
        description="Device id -> the point whose total is its consumption, when a meter reports several "
        "(default: the one kWh or m³ point that is not export/reverse).",
    )
    demo_period_s: float | None = Field(
        None, ge=10, le=3600,
        description="Demo clock (only with estate.demo: true): every this many seconds, also upload the "
        "running hour's figures so far, marked dimensions.demo = 'running_hour', so a demo shows "
        "indicators within minutes instead of after the first hour closes. null: off (every real estate).",
    )
    energy: EnergyWatchConfig = EnergyWatchConfig()

    @model_validator(mode="after")
    def _night(self) -> IndicatorsConfig:
        if self.energy.night_start == self.energy.night_end:
            raise ValueError("energy.night_start and energy.night_end must differ")
        return self
