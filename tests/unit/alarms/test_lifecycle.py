"""The alarm lifecycle against a real store: dedup, acknowledge, resolve, clear, escalation, restart."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from edge.alarms import AlarmManager, AlarmNotFound, AlarmStateError
from edge.clock import ManualClock
from edge.config.alarms import AlarmsConfig
from edge.records import AlarmState, Severity
from edge.rules import AlarmTransition, TransitionKind
from edge.store import Store
from tests.helpers.sql import sql_one, sql_rows

from .conftest import T0


def raise_(code: str = "fire.hydrant_pressure_low", device: str = "B1-HP-01", point: str | None = "pressure",
           at: int = 0, severity: Severity = Severity.CRITICAL) -> AlarmTransition:
    return AlarmTransition(code, device, TransitionKind.RAISE, T0 + timedelta(seconds=at), severity,
                           f"{device} low", device_id=device, point=point, data={"value": 0.05})


def clear(code: str = "fire.hydrant_pressure_low", device: str = "B1-HP-01", point: str | None = "pressure",
          at: int = 60) -> AlarmTransition:
    return AlarmTransition(code, device, TransitionKind.CLEAR, T0 + timedelta(seconds=at), Severity.INFO,
                           f"{device} back", device_id=device, point=point, data={"value": 0.3})


async def steps(store: Store, alarm_id: str) -> list[tuple[str, str, str]]:
    rows = await sql_rows(store, "SELECT state, actor, note FROM alarm_log WHERE alarm_id=? ORDER BY id", (alarm_id,))
    return [tuple(r) for r in rows]


async def test_no_duplicates_while_open_and_clear_closes(store: Store, clock: ManualClock) -> None:
    manager = AlarmManager(store, clock=clock)
    first = await manager.apply([raise_(), raise_(at=5)])
    assert [r.state for r in first] == [AlarmState.RAISED]
    assert await manager.apply([raise_(at=10)]) == []
    assert manager.duplicates == 2
    # Another point of the same device is another alarm.
    other = await manager.apply([raise_(code="device.sensor_fault", point="pressure")])
    assert len(other) == 1 and other[0].alarm_id != first[0].alarm_id
    cleared = await manager.apply([clear()])
    assert [(r.state, r.alarm_id, r.severity) for r in cleared] == [
        (AlarmState.CLEARED, first[0].alarm_id, Severity.CRITICAL)]
    assert await manager.apply([clear(at=70)]) == [] and manager.stray_clears == 1
    # Cleared: the next raise is a new alarm.
    again = await manager.apply([raise_(at=120)])
    assert again[0].alarm_id != first[0].alarm_id
    row = await sql_one(store, "SELECT state, is_open, cleared_us IS NOT NULL FROM alarms WHERE alarm_id=?",
                               (first[0].alarm_id,))
    assert row == ("cleared", 0, 1)
    assert await store.count("alarm_log") == 4


async def test_raise_clear_raise_in_one_batch(store: Store, clock: ManualClock) -> None:
    manager = AlarmManager(store, clock=clock)
    (old,) = await manager.apply([raise_()])
    records = await manager.apply([clear(at=30), raise_(at=40), raise_(at=50)])
    assert [r.state for r in records] == [AlarmState.CLEARED, AlarmState.RAISED]
    assert records[0].alarm_id == old.alarm_id and records[1].alarm_id != old.alarm_id
    assert [a["alarm_id"] for a in manager.open_alarms()] == [records[1].alarm_id]


async def test_acknowledge_then_resolve_with_note(store: Store, clock: ManualClock) -> None:
    manager = AlarmManager(store, clock=clock)
    (raised,) = await manager.apply([raise_()])
    clock.advance(120)
    ack = await manager.acknowledge(raised.alarm_id, "wang", "去看看")
    assert ack.ts == T0 + timedelta(seconds=120) and ack.actor == "wang"
    with pytest.raises(AlarmStateError) as info:
        await manager.acknowledge(raised.alarm_id, "li")
    assert info.value.code == "alarm.not_ackable"
    with pytest.raises(AlarmStateError, match="note is required"):
        await manager.resolve(raised.alarm_id, "wang", "   ")
    with pytest.raises(AlarmStateError, match="name of the person"):
        await manager.resolve(raised.alarm_id, "system", "done")
    clock.advance(600)
    resolved = await manager.resolve(raised.alarm_id, "wang", "稳压泵复位，压力恢复 0.32 MPa")
    assert resolved.state is AlarmState.RESOLVED
    with pytest.raises(AlarmStateError) as info:
        await manager.resolve(raised.alarm_id, "wang", "again")
    assert info.value.code == "alarm.already_resolved"
    with pytest.raises(AlarmNotFound) as missing:
        await manager.acknowledge("01JNOSUCHALARM000000000000", "wang")
    assert missing.value.status == 404 and isinstance(missing.value, KeyError)
    assert await steps(store, raised.alarm_id) == [
        ("raised", "system", ""), ("acknowledged", "wang", "去看看"),
        ("resolved", "wang", "稳压泵复位，压力恢复 0.32 MPa")]
    row = await sql_one(store, "SELECT state, is_open, acked_by, resolved_by FROM alarms WHERE alarm_id=?",
                               (raised.alarm_id,))
    assert row == ("resolved", 0, "wang", "wang")
    # Resolved while the condition persisted: the rule engine's later clear is a stray, not an error.
    assert await manager.apply([clear(at=900)]) == []


async def test_cleared_alarm_can_still_be_resolved_but_not_acknowledged(store: Store, clock: ManualClock) -> None:
    manager = AlarmManager(store, clock=clock)
    (raised,) = await manager.apply([raise_()])
    await manager.apply([clear()])
    with pytest.raises(AlarmStateError):
        await manager.acknowledge(raised.alarm_id, "wang")
    await manager.resolve(raised.alarm_id, "wang", "现场检查：管网检修后已恢复")
    assert [s[0] for s in await steps(store, raised.alarm_id)] == ["raised", "cleared", "resolved"]
    assert await sql_one(store, "SELECT state FROM alarms WHERE alarm_id=?", (raised.alarm_id,)) == ("resolved",)


async def test_escalation_levels_stop_on_acknowledge_and_survive_restart(store: Store, clock: ManualClock) -> None:
    config = AlarmsConfig(escalate_after_min=[15, 60])
    manager = AlarmManager(store, clock=clock, config=config)
    (a,) = await manager.apply([raise_()])
    (b,) = await manager.apply([raise_(code="device.offline", device="B2-HP-01", point=None)])
    clock.advance(14 * 60)
    assert await manager.check_escalations() == []
    clock.advance(2 * 60)  # 16 minutes
    first = await manager.check_escalations()
    assert sorted((r.alarm_id, r.data["level"]) for r in first) == sorted([(a.alarm_id, 1), (b.alarm_id, 1)])
    assert all(r.state is AlarmState.ESCALATED and r.actor == "system" for r in first)
    assert await manager.check_escalations() == []  # a level is never repeated
    await manager.acknowledge(b.alarm_id, "zhao")

    # Restart: a new manager restores levels and acknowledgements from the store.
    restarted = AlarmManager(store, clock=clock, config=config)
    assert await restarted.restore() == 2
    assert await restarted.check_escalations() == []
    clock.advance(45 * 60)  # 61 minutes after raising
    second = await restarted.check_escalations()
    assert [(r.alarm_id, r.data["level"]) for r in second] == [(a.alarm_id, 2)]
    assert second[0].data["unacknowledged_min"] == pytest.approx(61.0)
    clock.advance(600)
    assert await restarted.check_escalations() == []
    row = await sql_one(store, "SELECT state, escalated_us IS NOT NULL FROM alarms WHERE alarm_id=?", (a.alarm_id,))
    assert row == ("escalated", 1)
    # An escalated alarm can still be acknowledged, and then resolved.
    await restarted.acknowledge(a.alarm_id, "wang")
    await restarted.resolve(a.alarm_id, "wang", "已处理")
    assert [s[0] for s in await steps(store, a.alarm_id)] == [
        "raised", "escalated", "escalated", "acknowledged", "resolved"]


async def test_restore_keeps_dedup_across_restart(store: Store, clock: ManualClock) -> None:
    manager = AlarmManager(store, clock=clock)
    (raised,) = await manager.apply([raise_()])
    restarted = AlarmManager(store, clock=clock)
    await restarted.restore()
    assert await restarted.apply([raise_(at=30)]) == []
    cleared = await restarted.apply([clear()])
    assert cleared[0].alarm_id == raised.alarm_id


async def test_escalation_loop_runs_in_the_background(store: Store, clock: ManualClock) -> None:
    config = AlarmsConfig(escalate_after_min=[1], check_interval_s=0.02)
    async with AlarmManager(store, clock=clock, config=config) as manager:
        (raised,) = await manager.apply([raise_()])
        clock.advance(61)
        for _ in range(200):
            if manager.escalations:
                break
            await asyncio.sleep(0.01)
        assert manager.escalations == 1
    assert [s[0] for s in await steps(store, raised.alarm_id)] == ["raised", "escalated"]


async def test_failed_write_leaves_the_view_unchanged(store: Store, clock: ManualClock) -> None:
    manager = AlarmManager(store, clock=clock)
    await store.close()
    with pytest.raises(Exception, match="closed"):
        await manager.apply([raise_()])
    assert manager.open_alarms() == []
