"""Abnormal-use alarms from meter totals: night flow, monthly quota, sudden jumps; through the pipeline too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge.alarms import AlarmManager
from edge.indicators.energy_watch import (
    NIGHT_FLOW,
    OVER_QUOTA,
    QUOTA_WARNING,
    SUDDEN_JUMP,
    EnergyWatch,
    RuleChain,
)
from edge.records import Reading
from edge.rules import RuleEngine, TransitionKind

from .conftest import estate

MIN = timedelta(minutes=1)
# 2025-03-01 00:00 local (Asia/Shanghai)
MIDNIGHT = datetime(2025, 2, 28, 16, tzinfo=UTC)
WATER = {"id": "WM-1", "name": "总水表", "category": "water", "poll_interval_s": 60}
LIFTS = {"id": "EM-1", "name": "电梯", "category": "electricity", "sub_item": "lifts", "poll_interval_s": 60}
LIFTS2 = {"id": "EM-2", "name": "电梯2", "category": "electricity", "sub_item": "lifts", "poll_interval_s": 60}


def drive(watch, device: str, point: str, unit: str, start: datetime, rate_per_min, minutes: int,
          total: float = 0.0) -> tuple[list, float]:
    """Feed one reading a minute; ``rate_per_min(i)`` is the consumption in minute i. Returns transitions."""
    out = []
    for i in range(minutes + 1):
        out += [(i, t) for t in watch.on_readings([Reading(device, point, total, unit, start + i * MIN)])]
        total += rate_per_min(i)
    return out, total


def test_continuous_night_flow_raises_and_clears() -> None:
    watch = EnergyWatch.from_config(estate([WATER]))
    # A dripping pipe from midnight: 0.3 L a minute all night, until someone fixes it at 06:00.
    out, _ = drive(watch, "WM-1", "volume_forward", "m³", MIDNIGHT, lambda i: 0.0003 if i < 360 else 0.0, 480)
    raised = [(i, t) for i, t in out if t.kind is TransitionKind.RAISE]
    cleared = [(i, t) for i, t in out if t.kind is TransitionKind.CLEAR]
    # The night starts at 01:00; 120 minutes of flow in 15-minute windows: raised at 03:00.
    assert [(i, t.code, t.subject) for i, t in raised] == [(180, NIGHT_FLOW, "WM-1")]
    assert raised[0][1].ts == MIDNIGHT + 180 * MIN and raised[0][1].data["minutes"] == 120
    # Flow stops at 06:00: the first quiet window (06:00-06:15) clears it.
    assert [(i, t.code) for i, t in cleared] == [(375, NIGHT_FLOW)]


def test_normal_night_with_a_pause_raises_nothing() -> None:
    watch = EnergyWatch.from_config(estate([WATER]))
    # Some use, but a quiet quarter of an hour every hour (nobody showers all night).
    out, _ = drive(watch, "WM-1", "volume_forward", "m³", MIDNIGHT, lambda i: 0.0 if i % 60 < 15 else 0.002, 360)
    assert out == []


def test_monthly_quota_per_meter_and_sub_item_clears_next_month() -> None:
    config = estate([LIFTS, LIFTS2], indicators={"energy": {"monthly_quota": {"EM-1": 100, "sub_item:lifts": 150}}})
    watch = EnergyWatch.from_config(config)
    start = datetime(2025, 3, 31, 13, 0, tzinfo=UTC)  # 21:00 local, three hours before April
    seen = []
    total1 = total2 = 0.0
    for i in range(181):
        ts = start + i * MIN
        seen += [(i, t) for t in watch.on_readings([Reading("EM-1", "energy_import", total1, "kWh", ts),
                                                    Reading("EM-2", "energy_import", total2, "kWh", ts)])]
        total1 += 1.0
        total2 += 0.5
    raises = [(i, t.subject) for i, t in seen if t.code == OVER_QUOTA and t.kind is TransitionKind.RAISE]
    # EM-1 passes 100 kWh at minute 101; the lifts together pass 150 at minute 101 too (1.5 a minute).
    assert raises == [(101, "EM-1"), (101, "sub_item:lifts:electricity")]
    clears = [(i, t.subject, t.ts) for i, t in seen if t.code == OVER_QUOTA and t.kind is TransitionKind.CLEAR]
    april = datetime(2025, 3, 31, 16, tzinfo=UTC)
    assert sorted(clears) == [(180, "EM-1", april), (180, "sub_item:lifts:electricity", april)]


def test_sudden_jump_against_learnt_baseline() -> None:
    watch = EnergyWatch.from_config(estate([LIFTS]))
    # Six hours at 3 kWh/h, one hour at 40 kWh/h, then back to 3.
    rate = lambda i: 40 / 60 if 360 <= i < 420 else 3 / 60  # noqa: E731
    out, _ = drive(watch, "EM-1", "energy_import", "kWh", MIDNIGHT, rate, 480)
    jumps = [(i, t.kind) for i, t in out if t.code == SUDDEN_JUMP]
    assert jumps == [(375, TransitionKind.RAISE), (435, TransitionKind.CLEAR)]
    raise_data = next(t for i, t in out if t.code == SUDDEN_JUMP).data
    assert raise_data["rate_per_h"] == pytest.approx(40.0) and raise_data["baseline_per_h"] == pytest.approx(3.0)
    # Small meters are noisy: below jump_min_rate nothing is raised however large the factor.
    quiet = EnergyWatch.from_config(estate([LIFTS]))
    out, _ = drive(quiet, "EM-1", "energy_import", "kWh", MIDNIGHT,
                   lambda i: 2 / 60 if 360 <= i < 420 else 0.1 / 60, 480)
    assert out == []


async def test_through_the_pipeline_rule_chain_and_restart(make_rig) -> None:
    config = estate([WATER], indicators={"energy": {"monthly_quota": {"WM-1": 0.05}}})
    rig = await make_rig([WATER], start=MIDNIGHT, indicators={"energy": {"monthly_quota": {"WM-1": 0.05}}})
    watch = EnergyWatch.from_config(config)
    rig.pipeline.rules = RuleChain(RuleEngine.from_config(config), watch)
    manager = AlarmManager(rig.store, clock=rig.clock)
    rig.pipeline.alarms = manager
    await rig.engine.start()
    total = 0.0
    for i in range(241):
        ts = MIDNIGHT + i * MIN
        rig.clock.set(ts)
        await rig.feed([Reading("WM-1", "volume_forward", total, "m3", ts)])
        total += 0.0003
        if i % 30 == 0:
            await rig.engine.tick()
    codes = sorted(a["code"] for a in manager.open_alarms())
    assert codes == [NIGHT_FLOW, OVER_QUOTA, QUOTA_WARNING]  # 0.072 m³ by 04:00 > 0.05 (warned at 0.045); flow all night
    # Restart: a fresh watch restores month-to-date use and the open alarms; no repeated raise.
    fresh = EnergyWatch.from_config(config)
    fresh.restore(await rig.store.open_alarms())
    await fresh.restore_usage(rig.store, rig.clock.now())
    assert fresh._meters["WM-1"].month_used == pytest.approx(0.072, abs=1e-3)
    # No closed month yet this quarter / year: their figures are the month's.
    assert fresh._meters["WM-1"].year_used == pytest.approx(0.072, abs=1e-3) == fresh._meters["WM-1"].quarter_used
    again = fresh.on_readings([Reading("WM-1", "volume_forward", total, "m3", MIDNIGHT + 241 * MIN)])
    assert again == []
    await rig.engine.tick()
    rig.clock.set(MIDNIGHT + 5 * 60 * MIN + 3 * MIN)
    await rig.engine.tick()
    abnormal = await rig.latest("energy.abnormal_events", "hour", MIDNIGHT + 3 * 60 * MIN)
    assert abnormal["value"] == 1  # the night-flow alarm was raised at 03:00


def test_quarterly_and_yearly_quotas_warn_before_the_limit_and_clear_with_the_period() -> None:
    """004 8.4.8 c): quotas per quarter and per year, with a warning at 90 % before the over-quota alarm.

    EM-1 uses 1 kWh a minute from 21:00 local on 31 December: the yearly quota of 100 kWh is warned at
    90 and exceeded after 100; the quarterly quota of 150 for the lifts is warned at 135 (EM-1 and
    EM-2 together, 1.5 a minute). Midnight starts a new quarter and a new year: all four clear.
    """
    energy = {"quarterly_quota": {"sub_item:lifts": 150}, "yearly_quota": {"EM-1": 100}}
    watch = EnergyWatch.from_config(estate([LIFTS, LIFTS2], indicators={"energy": energy}))
    start = datetime(2025, 12, 31, 13, 0, tzinfo=UTC)  # 21:00 in Shanghai, three hours before 2026
    seen = []
    total1 = total2 = 0.0
    for i in range(181):
        ts = start + i * MIN
        seen += [(i, t) for t in watch.on_readings([Reading("EM-1", "energy_import", total1, "kWh", ts),
                                                    Reading("EM-2", "energy_import", total2, "kWh", ts)])]
        total1 += 1.0
        total2 += 0.5
    raised = [(i, t.code, t.subject, t.point) for i, t in seen if t.kind is TransitionKind.RAISE]
    assert sorted(raised) == [
        (90, QUOTA_WARNING, "EM-1", "year"),  # 90 kWh = 90 % of 100
        (90, QUOTA_WARNING, "sub_item:lifts:electricity", "quarter"),  # 135 kWh = 90 % of 150
        (101, OVER_QUOTA, "EM-1", "year"),
        (101, OVER_QUOTA, "sub_item:lifts:electricity", "quarter"),
    ]
    warning = next(t for _i, t in seen if t.code == QUOTA_WARNING and t.point == "year")
    assert warning.message == "EM-1 本年度已用 90 kWh，达到定额 100 kWh 的 90%，即将超额"
    assert warning.data["year_used"] == 90 and warning.data["warn_ratio"] == 0.9
    new_year = datetime(2025, 12, 31, 16, tzinfo=UTC)
    clears = sorted((t.code, t.point) for _i, t in seen if t.kind is TransitionKind.CLEAR)
    assert clears == [(OVER_QUOTA, "quarter"), (OVER_QUOTA, "year"), (QUOTA_WARNING, "quarter"),
                      (QUOTA_WARNING, "year")]
    assert all(t.ts == new_year for _i, t in seen if t.kind is TransitionKind.CLEAR)
    # The month has no quota here, and the new year's first minutes count from zero.
    assert watch._meters["EM-1"].year_used < 10 and not any(t.point is None for _i, t in seen)
