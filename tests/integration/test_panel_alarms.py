"""The panel driving the real AlarmManager: staff actions go through the manager, its view stays in step."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx

from edge.alarms.manager import AlarmManager
from edge.clock import ManualClock
from edge.panel import create_app
from edge.panel.roles import Role
from edge.records import Severity
from edge.store import Store
from edge.transitions import AlarmTransition, TransitionKind
from tests.helpers.panel import PASSWORD, cheap_passwords, csrf_from, panel_settings, write_panel_estate
from tests.helpers.sql import sql_rows

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def _low_pressure(kind: TransitionKind) -> AlarmTransition:
    return AlarmTransition(code="fire.hydrant_pressure_low", subject="hyd-1", kind=kind, ts=T0,
                           severity=Severity.MAJOR, message="1栋消火栓压力低", device_id="hyd-1", point="pressure",
                           data={"value": 0.05})


async def test_panel_actions_go_through_the_alarm_manager(tmp_path: Path) -> None:
    config_path, secrets_path = write_panel_estate(tmp_path)
    clock = ManualClock(T0)
    async with Store(tmp_path / "edge.db", maintenance_interval_s=0, batch_max_delay_ms=1, clock=clock) as store:
        manager = AlarmManager(store, clock=clock)
        await manager.start(escalation_loop=False)
        try:
            (raised,) = await manager.apply([_low_pressure(TransitionKind.RAISE)])
            app = create_app(store, config_path, secrets_path, alarms=manager, clock=clock,
                             passwords=cheap_passwords(), settings=panel_settings())
            async with (app.router.lifespan_context(app),
                        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://panel") as client):
                await app.state.panel.users.create("duty", PASSWORD, Role.OPERATOR)
                page = await client.get("/login")
                await client.post("/login", data={"username": "duty", "password": PASSWORD,
                                                  "csrf_token": csrf_from(page.text)})
                csrf = (await client.get("/api/v1/me")).json()["csrf_token"]
                headers = {"x-csrf-token": csrf}
                alarm_id = raised.alarm_id
                ack = await client.post(f"/api/v1/alarms/{alarm_id}/acknowledge", json={"note": "收到"}, headers=headers)
                assert ack.status_code == 200 and manager._open[alarm_id].acked
                again = await client.post(f"/api/v1/alarms/{alarm_id}/acknowledge", json={}, headers=headers)
                assert again.status_code == 409 and "alarm.not_ackable" in again.json()["detail"]
                done = await client.post(f"/api/v1/alarms/{alarm_id}/resolve", json={"note": "已复压"}, headers=headers)
                assert done.json()["state"] == "resolved"
                assert alarm_id not in manager._open  # the manager's view followed the panel's action
                # With the key free again, the same condition raises a new alarm (no duplicate suppression).
                (second,) = await manager.apply([_low_pressure(TransitionKind.RAISE)])
                assert second.alarm_id != alarm_id
                steps = await sql_rows(store, "SELECT state, actor, note FROM alarm_log WHERE alarm_id=? ORDER BY id",
                                         (alarm_id,))
                assert steps == [("raised", "system", ""), ("acknowledged", "duty", "收到"), ("resolved", "duty", "已复压")]
        finally:
            await manager.stop()
