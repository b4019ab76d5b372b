"""A pending ``min_duration_s`` condition survives restarts (issue 10 defect 4).

The real rule engine and the real store file; each "restart" is a new engine over the same file.
A hydrant's pressure stays low for 30 s across three restarts: the alarm is raised at 30 s, as
without restarts, not 30 s after the last restart.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.clock import iso_z
from edge.config import EstateConfig
from edge.records import Quality, Reading
from edge.rules import RuleEngine, TransitionKind
from edge.rules.persistence import PendingTimers
from edge.store import Store

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
CONFIG = EstateConfig.model_validate({
    "estate": {"id": "e1", "name": "E", "gateway_id": "g1"},
    "platform": {"url": "https://platform.example", "client_id": "c"},
    "buses": [{"kind": "synthetic", "id": "b"}],
    "devices": [{"id": "h1", "name": "h1", "bus": "b", "category": "fire_pressure", "location": {"building": "1"}},
                {"id": "lv", "name": "lv", "bus": "b", "category": "fire_level", "location": {"building": "1"},
                 "thresholds": {"level": {"high": 5.0, "min_duration_s": 20}}}],
})


def pressure(value: float, second: float) -> Reading:
    return Reading("h1", "pressure", value, "MPa", T0 + timedelta(seconds=second), Quality.GOOD)


async def _run_once(path: Path, seconds: list[float], value: float = 0.05, *, killed: bool = False) -> list:
    """One daemon life: restore timers, evaluate readings, stop cleanly (or be killed: no final save)."""
    engine = RuleEngine.from_config(CONFIG)
    async with Store(path, maintenance_interval_s=0, batch_max_delay_ms=1) as store:
        timers = PendingTimers(store, engine, interval_s=0.02)
        await timers.__aenter__()
        out = [t for s in seconds for t in engine.on_readings([pressure(value, s)])]
        if killed:
            await asyncio.sleep(0.1)  # the periodic save ran; then SIGKILL: no __aexit__
            assert timers._task is not None
            timers._task.cancel()
        else:
            await timers.__aexit__(None, None, None)
    return out


async def test_a_30_s_episode_across_restarts_raises_at_30_s(tmp_path: Path) -> None:
    path = tmp_path / "edge.db"
    assert await _run_once(path, [0, 5, 9]) == []
    assert await _run_once(path, [12, 16, 20], killed=True) == []
    out = await _run_once(path, [24, 28, 31, 34])
    assert [(t.code, t.kind, t.ts) for t in out] == [
        ("fire.hydrant_pressure_low", TransitionKind.RAISE, T0 + timedelta(seconds=31))]
    assert out[0].data["since"] == iso_z(T0)


async def test_a_recovery_ends_the_timer_for_the_next_life_too(tmp_path: Path) -> None:
    path = tmp_path / "edge.db"
    assert await _run_once(path, [0, 10]) == []
    assert await _run_once(path, [15], value=0.30) == []  # recovered: the timer ends
    assert await _run_once(path, [20, 40]) == []  # a new episode from 20 s: 40 s is only 20 s in
    out = await _run_once(path, [51])
    assert [t.ts for t in out] == [T0 + timedelta(seconds=51)] and out[0].data["since"] == iso_z(
        T0 + timedelta(seconds=20))


async def test_high_limits_and_reconfigured_rules_are_kept_apart(tmp_path: Path) -> None:
    engine = RuleEngine.from_config(CONFIG)
    reading = Reading("lv", "level", 5.5, "m", T0, Quality.GOOD)
    engine.on_readings([reading])
    assert list(engine.pending_timers()) == [("lv", "level", "high")]
    fresh = RuleEngine.from_config(CONFIG)
    fresh.restore_timers({**engine.pending_timers(), ("lv", "level", "low"): T0, ("gone", "p", "low"): T0})
    assert list(fresh.pending_timers()) == [("lv", "level", "high")], "timers of rules that no longer exist dropped"
    out = fresh.on_readings([reading._replace(ts=T0 + timedelta(seconds=21))])
    assert [t.code for t in out] == ["fire.water_level_high"]
