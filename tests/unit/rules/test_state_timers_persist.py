"""A state input's ``min_duration_s`` wait survives restarts, as a threshold's does (``test_pending_timers``).

The real rule engine and the real store file; each "restart" is a new engine over the same file. A fire
door held open for 60 s across two restarts (one of them a SIGKILL) raises ``fire.door_open`` at 60 s,
as without restarts, not 60 s after the last restart; and a restart after the alarm was raised does not
raise it again, even when the kill came before the ended wait was removed from the store.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.config import EstateConfig
from edge.records import AlarmState, Quality, Reading, Severity
from edge.rules import OpenAlarm, RuleEngine, TransitionKind
from edge.rules.persistence import PendingTimers
from edge.store import Store

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
CONFIG = EstateConfig.model_validate({
    "estate": {"id": "e1", "name": "E", "gateway_id": "g1"},
    "platform": {"url": "https://platform.example", "client_id": "c"},
    "buses": [{"kind": "synthetic", "id": "b"}],
    "devices": [{"id": "DI-1", "name": "3栋1单元", "bus": "b", "category": "other", "location": {"building": "3栋"},
                 "states": {"di1": {"alarm": "fire.door_open", "active": [1], "min_duration_s": 60,
                                    "names": {0: "关闭", 1: "开启"}, "label": "3栋1单元 防火门"},
                            "di2": {"alarm": "water.ingress", "active": [1], "label": "B1 水浸"}}}],
})


def door(value: int, second: float) -> Reading:
    return Reading("DI-1", "di1", value, "", T0 + timedelta(seconds=second), Quality.GOOD)


class Life:
    """What one daemon life saw: the waits it resumed from the store, and the transitions it produced."""

    def __init__(self) -> None:
        self.resumed: dict = {}
        self.out: list = []


async def _run_once(path: Path, seconds: list[float], value: int = 1, *, killed: bool = False,
                    open_alarms: list[OpenAlarm] | None = None) -> Life:
    """One daemon life: restore timers (and the store's open alarms), evaluate readings, then stop cleanly or
    be killed (SIGKILL right after the last reading: no final save; the periodic save ran between readings)."""
    life = Life()
    engine = RuleEngine.from_config(CONFIG)
    async with Store(path, maintenance_interval_s=0, batch_max_delay_ms=1) as store:
        timers = PendingTimers(store, engine, interval_s=0.02)
        await timers.__aenter__()
        engine.restore(open_alarms or [])
        life.resumed = engine.pending_timers()
        for i, s in enumerate(seconds):
            life.out.extend(engine.on_readings([door(value, s)]))
            if killed and i < len(seconds) - 1:
                await asyncio.sleep(0.1)
        if killed:
            assert timers._task is not None
            timers._task.cancel()
        else:
            await timers.__aexit__(None, None, None)
    return life


async def test_a_door_held_open_across_restarts_raises_on_time(tmp_path: Path) -> None:
    path = tmp_path / "edge.db"
    assert (await _run_once(path, [0, 10, 20])).out == []
    second = await _run_once(path, [30, 40], killed=True)
    assert second.resumed == {("DI-1", "di1", "state"): T0} and second.out == []
    out = (await _run_once(path, [50, 61, 70])).out
    assert [(t.code, t.kind, t.ts) for t in out] == [("fire.door_open", TransitionKind.RAISE, T0 + timedelta(seconds=61))]
    assert out[0].data["held_s"] == 61  # measured from the first open reading, before both restarts


async def test_a_restart_after_the_alarm_does_not_raise_it_twice(tmp_path: Path) -> None:
    path = tmp_path / "edge.db"
    assert (await _run_once(path, [0, 30])).out == []
    # Raised at 60 s, then killed before the periodic save removed the ended wait from the store.
    raised = (await _run_once(path, [45, 60], killed=True)).out
    assert [(t.kind, t.ts) for t in raised] == [(TransitionKind.RAISE, T0 + timedelta(seconds=60))]
    # The next life resumes that leftover wait, but the alarm is open in the store: no second raise.
    still_open = [OpenAlarm("A1", "fire.door_open", "DI-1", Severity.MAJOR, AlarmState.RAISED,
                            T0 + timedelta(seconds=60), "", {"point": "di1"})]
    third = await _run_once(path, [90, 120, 200, 210], open_alarms=still_open)
    assert third.resumed == {("DI-1", "di1", "state"): T0}
    assert third.out == []
    shut = (await _run_once(path, [220], value=0, open_alarms=still_open)).out
    assert [t.kind for t in shut] == [TransitionKind.CLEAR]  # and it clears once when the door shuts


async def test_a_closed_door_ends_the_wait_for_the_next_life_too(tmp_path: Path) -> None:
    path = tmp_path / "edge.db"
    assert (await _run_once(path, [0, 40])).out == []
    assert (await _run_once(path, [45], value=0)).out == []  # shut: the wait ends
    assert (await _run_once(path, [50, 100])).out == []  # opened again at 50 s: 100 s is only 50 s in
    out = (await _run_once(path, [111])).out
    assert [t.ts for t in out] == [T0 + timedelta(seconds=111)] and out[0].data["held_s"] == 61


async def test_state_waits_are_kept_apart_from_threshold_waits_and_dropped_with_their_rule() -> None:
    engine = RuleEngine.from_config(CONFIG)
    engine.on_readings([door(1, 0), Reading("DI-1", "di2", 0, "", T0, Quality.GOOD)])
    assert engine.pending_timers() == {("DI-1", "di1", "state"): T0}
    fresh = RuleEngine.from_config(CONFIG)
    fresh.restore_timers({("DI-1", "di1", "state"): T0, ("DI-1", "di2", "state"): T0,  # di2 raises at once
                          ("DI-1", "gone", "state"): T0, ("DI-1", "di1", "low"): T0})
    assert fresh.pending_timers() == {("DI-1", "di1", "state"): T0}
    assert [t.code for t in fresh.on_readings([door(1, 60)])] == ["fire.door_open"]
    assert fresh.pending_timers() == {}
