"""Indicator data for the platform: hourly, daily and monthly records per estate (see ``engine``)."""

from edge.indicators.catalog import CODES, SPECS, IndicatorSpec
from edge.indicators.engine import IndicatorEngine
from edge.indicators.periods import LocalCalendar, Period

__all__ = ["CODES", "SPECS", "IndicatorEngine", "IndicatorSpec", "LocalCalendar", "Period"]
