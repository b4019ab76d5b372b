"""The pure parts: local periods, consumption attribution, online time, series merges, lane episodes."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from edge.clock import to_us
from edge.indicators.families.availability import online_seconds
from edge.indicators.families.energy import consumption
from edge.indicators.families.lanes import LANE_BLOCKED, LANE_CLEARED, episodes
from edge.indicators.periods import LocalCalendar
from edge.indicators.series import PRESENCE, SAMPLE, merge_presence, merge_samples

MIN_US = 60 * 1_000_000


def test_shanghai_day_and_month_periods() -> None:
    cal = LocalCalendar("Asia/Shanghai")
    # 2025-01-31 23:59 local is 15:59Z: still January 31st locally.
    day = cal.period_of("day", datetime(2025, 1, 31, 15, 59, tzinfo=UTC))
    assert (day.start, day.end) == (datetime(2025, 1, 30, 16, tzinfo=UTC), datetime(2025, 1, 31, 16, tzinfo=UTC))
    month = cal.period_of("month", datetime(2025, 1, 31, 16, 0, tzinfo=UTC))  # 2025-02-01 00:00 local
    assert (month.start, month.end) == (datetime(2025, 1, 31, 16, tzinfo=UTC), datetime(2025, 2, 28, 16, tzinfo=UTC))
    december = cal.period_of("month", datetime(2024, 12, 31, 17, tzinfo=UTC))  # 2025-01-01 01:00 local
    assert december.start == datetime(2024, 12, 31, 16, tzinfo=UTC) and december.end.month == 1
    assert len(list(cal.hours(day.start_us, day.end_us))) == 24
    with pytest.raises(ValueError, match="granularity"):
        cal.period_of("week", day.start)


def test_dst_days_have_23_and_25_hours_and_half_hour_zones() -> None:
    berlin = LocalCalendar("Europe/Berlin")
    spring = berlin.period_of("day", datetime(2025, 3, 30, 12, tzinfo=UTC))
    autumn = berlin.period_of("day", datetime(2025, 10, 26, 12, tzinfo=UTC))
    assert spring.seconds == 23 * 3600 and len(list(berlin.hours(spring.start_us, spring.end_us))) == 23
    assert autumn.seconds == 25 * 3600 and len(list(berlin.hours(autumn.start_us, autumn.end_us))) == 25
    kolkata = LocalCalendar("Asia/Kolkata")
    hour = kolkata.period_of("hour", datetime(2025, 1, 1, 10, 10, tzinfo=UTC))
    assert hour.start == datetime(2025, 1, 1, 9, 30, tzinfo=UTC)
    assert kolkata.hour_start_us(to_us(datetime(2025, 1, 1, 10, 10, tzinfo=UTC))) == hour.start_us


def test_consumption_is_attributed_by_time_and_never_negative() -> None:
    ts = np.array([0, 10, 70, 80], np.int64) * MIN_US
    values = np.array([100.0, 110.0, 170.0, 165.0])  # the last sample went down: counts zero
    # Hour [0, 60): 10 + 50 of the 60 between minute 10 and 70.
    assert consumption(ts, values, 0, 60 * MIN_US) == pytest.approx(60.0)
    assert consumption(ts, values, 60 * MIN_US, 120 * MIN_US) == pytest.approx(10.0)
    assert consumption(ts[:1], values[:1], 0, 60 * MIN_US) == 0.0
    # Same timestamp twice: no division by zero.
    assert consumption(np.array([0, 0, 60], np.int64) * MIN_US, np.array([1.0, 2.0, 3.0]), 0, 60 * MIN_US) == 1.0


def test_online_seconds_union_of_report_windows() -> None:
    # Reports every 10 s with a 30 s window: always online.
    assert online_seconds(np.arange(0, 3600, 10, dtype=float), 30, 3600) == 3600
    # Reports at 0 and 100: online [0, 30) and [100, 130).
    assert online_seconds(np.array([0.0, 100.0]), 30, 3600) == 60
    # A report 10 s before the hour keeps the device online for the first 20 s.
    assert online_seconds(np.array([-10.0]), 30, 3600) == 20
    assert online_seconds(np.array([3590.0]), 30, 3600) == 10
    assert online_seconds(np.zeros(0), 30, 3600) == 0


def test_merges_are_idempotent() -> None:
    a = np.array([(0, 1.0, 0), (1000, 2.0, 0)], SAMPLE)
    b = np.array([(1000, 2.5, 1), (2000, 3.0, 0)], SAMPLE)
    merged = merge_samples([a, b])
    assert merged["t"].tolist() == [0, 1000, 2000] and merged["v"].tolist() == [1.0, 2.5, 3.0]
    assert merge_samples([merged, b]).tolist() == merged.tolist()  # folding b twice changes nothing
    p = np.array([(1, 5), (2, 5)], PRESENCE)
    q = np.array([(2, 3), (3, 5)], PRESENCE)
    both = merge_presence([p, q])
    assert both.tolist() == [(1, 5), (2, 5), (3, 5)]
    assert merge_presence([both, p, q]).tolist() == both.tolist()


def test_lane_episodes() -> None:
    rows = [(LANE_CLEARED, "c/a", 5), (LANE_BLOCKED, "c/a", 10), (LANE_BLOCKED, "c/a", 15),
            (LANE_BLOCKED, "c/b", 12), (LANE_CLEARED, "c/a", 20), (LANE_BLOCKED, "c/a", 30)]
    assert episodes(rows) == [("c/a", 10, 20), ("c/b", 12, None), ("c/a", 30, None)]
