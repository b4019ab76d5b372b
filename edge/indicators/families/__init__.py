"""Indicator families, one module each, in an explicit list (no discovery)."""

from edge.indicators.families.alarm_stats import AlarmStats
from edge.indicators.families.availability import Availability
from edge.indicators.families.base import DirectFamily, HourData, Partial, SeriesFamily, combine
from edge.indicators.families.energy import Energy
from edge.indicators.families.fire import FireCompliance
from edge.indicators.families.lanes import Lanes


def series_families() -> list[SeriesFamily]:
    return [Availability(), FireCompliance(), Energy()]


def direct_families() -> list[DirectFamily]:
    return [Lanes(), AlarmStats()]


__all__ = ["DirectFamily", "HourData", "Partial", "SeriesFamily", "combine", "direct_families", "series_families"]
