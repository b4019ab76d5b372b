"""The JSON API behind the pages: same rules as the pages, typed bodies, clear errors."""

from __future__ import annotations

from datetime import timedelta

import yaml

from edge.panel.roles import Role
from edge.records import Severity
from tests.helpers.panel import alarm
from tests.helpers.sql import sql_one
from tests.unit.panel.conftest import Panel


async def test_alarm_list_filters_and_detail(panel: Panel) -> None:
    now = panel.clock.now()
    await panel.store.append_alarm_records([
        alarm("A1", ts=now - timedelta(hours=3), severity=Severity.CRITICAL),
        alarm("A2", ts=now - timedelta(hours=1), device_id="wm-2"),
    ])
    await panel.as_role(Role.VIEWER)
    everything = (await panel.client.get("/api/v1/alarms")).json()
    assert [a["alarm_id"] for a in everything["alarms"]] == ["A2", "A1"] and everything["total"] == 2
    since = (now - timedelta(hours=2)).isoformat()
    recent = (await panel.client.get("/api/v1/alarms", params={"since": since})).json()
    assert [a["alarm_id"] for a in recent["alarms"]] == ["A2"]
    by_building = (await panel.client.get("/api/v1/alarms", params={"building": "2栋"})).json()
    assert [a["alarm_id"] for a in by_building["alarms"]] == ["A2"]
    by_severity = (await panel.client.get("/api/v1/alarms", params={"order": "severity"})).json()
    assert by_severity["alarms"][0]["alarm_id"] == "A1"
    naive = await panel.client.get("/api/v1/alarms", params={"since": "2026-01-01T00:00:00"})
    assert naive.status_code == 422
    detail = (await panel.client.get("/api/v1/alarms/A1")).json()
    assert detail["device_name"] == "1栋消火栓压力" and detail["steps"][0]["state"] == "raised"
    assert detail["data"] == {"value": 0.05, "limit": 0.07}
    assert (await panel.client.get("/api/v1/alarms/NOPE")).status_code == 404


async def test_acknowledge_and_resolve(panel: Panel) -> None:
    await panel.store.append_alarm_records([alarm("A1")])
    csrf = await panel.as_role(Role.OPERATOR)
    headers = {"x-csrf-token": csrf}
    ack = await panel.client.post("/api/v1/alarms/A1/acknowledge", json={"note": "seen"}, headers=headers)
    assert ack.json() == {"ok": True, "alarm_id": "A1", "state": "acknowledged"}
    twice = await panel.client.post("/api/v1/alarms/A1/acknowledge", json={}, headers=headers)
    assert twice.status_code == 409 and "alarm.not_ackable" in twice.json()["detail"]
    empty = await panel.client.post("/api/v1/alarms/A1/resolve", json={"note": ""}, headers=headers)
    assert empty.status_code == 422
    extra = await panel.client.post("/api/v1/alarms/A1/resolve", json={"note": "x", "by": "me"}, headers=headers)
    assert extra.status_code == 422  # unknown fields are refused
    done = await panel.client.post("/api/v1/alarms/A1/resolve", json={"note": "fixed the valve"}, headers=headers)
    assert done.json()["state"] == "resolved"
    row = await sql_one(panel.store, "SELECT is_open, resolved_by, note FROM alarms WHERE alarm_id='A1'")
    assert row == (0, "operator-user", "fixed the valve")
    closed = await panel.client.post("/api/v1/alarms/A1/resolve", json={"note": "again"}, headers=headers)
    assert closed.status_code == 409


async def test_put_zones(panel: Panel) -> None:
    csrf = await panel.as_role(Role.ADMIN)
    headers = {"x-csrf-token": csrf}
    body = {"zones": [{"id": "door", "kind": "ebike_entry", "name": "大堂",
                       "points": [{"x": 1, "y": 1}, {"x": 90, "y": 1}, {"x": 90, "y": 80.5}]}]}
    saved = await panel.client.put("/api/v1/cameras/cam-1/zones", json=body, headers=headers)
    assert saved.status_code == 200 and saved.json()["ok"] and saved.json()["backup"].startswith("estate.yaml.bak-")
    zones = yaml.safe_load(panel.config_path.read_text(encoding="utf-8").replace("!secret", ""))["cameras"][0]["zones"]
    assert zones == [{"id": "door", "kind": "ebike_entry", "name": "大堂", "polygon": [[1, 1], [90, 1], [90, 80.5]]}]
    assert (await panel.client.get("/api/v1/cameras/cam-1")).json()["zones"][0]["id"] == "door"
    dup = {"zones": body["zones"] * 2}
    refused = await panel.client.put("/api/v1/cameras/cam-1/zones", json=dup, headers=headers)
    assert refused.status_code == 422 and any("used more than once" in p for p in refused.json()["detail"])
    assert (await panel.client.put("/api/v1/cameras/nope/zones", json=body, headers=headers)).status_code == 404


async def test_config_check_and_replace(panel: Panel) -> None:
    csrf = await panel.as_role(Role.ADMIN)
    headers = {"x-csrf-token": csrf}
    text = (await panel.client.get("/api/v1/config")).text
    assert text == panel.config_path.read_text(encoding="utf-8")
    check = (await panel.client.post("/api/v1/config/check", json={"text": text + "oops: 1\n"}, headers=headers)).json()
    assert check["ok"] is False and check["problems"][0]["line"] == len(text.splitlines()) + 1
    refused = await panel.client.put("/api/v1/config", json={"text": "estate: {}\n"}, headers=headers)
    assert refused.status_code == 422 and refused.json()["ok"] is False
    replaced = await panel.client.put("/api/v1/config", json={"text": text.replace("阳光花园", "新名")}, headers=headers)
    assert replaced.json()["reloaded"] is True and panel.reloads == [1]
    assert (await panel.client.get("/api/v1/overview")).json()["estate_name"] == "新名"


async def test_users_crud_and_audit(panel: Panel) -> None:
    csrf = await panel.as_role(Role.ADMIN)
    headers = {"x-csrf-token": csrf}
    created = await panel.client.post("/api/v1/users", json={"username": "night-shift", "role": "operator",
                                                              "password": "lantern orbit 73"}, headers=headers)
    assert created.status_code == 201 and created.json()["role"] == "operator"
    dup = await panel.client.post("/api/v1/users", json={"username": "night-shift", "role": "viewer",
                                                          "password": "whatever-pw-22"}, headers=headers)
    assert dup.status_code == 409
    weak = await panel.client.post("/api/v1/users", json={"username": "x", "role": "viewer", "password": "abc"},
                                   headers=headers)
    assert weak.status_code == 422
    patched = await panel.client.patch("/api/v1/users/night-shift", json={"role": "viewer", "enabled": False},
                                       headers=headers)
    assert patched.json()["role"] == "viewer" and patched.json()["enabled"] is False
    self_demote = await panel.client.patch("/api/v1/users/admin-user", json={"role": "viewer"}, headers=headers)
    assert self_demote.status_code == 409
    assert (await panel.client.delete("/api/v1/users/night-shift", headers=headers)).status_code == 204
    assert (await panel.client.delete("/api/v1/users/night-shift", headers=headers)).status_code == 404
    names = [u["username"] for u in (await panel.client.get("/api/v1/users")).json()]
    assert names == ["admin-user"]
    audit = (await panel.client.get("/api/v1/audit", params={"username": "admin-user"})).json()
    actions = [e["action"] for e in audit]
    assert actions[:3] == ["user.delete", "user.update", "user.update"] and "login" in actions
    assert "night-shift-pw-1" not in str(audit)  # passwords never reach the audit log


async def test_text_search_pages_the_same_on_both_query_paths(panel: Panel, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from edge.store import alarm_queries  # the alarm SQL (and its FEW_MATCHES cut-over) is the store's

    now = panel.clock.now()
    await panel.store.append_alarm_records(
        [alarm(f"S{i:02d}", ts=now - timedelta(minutes=i // 2), message=f"水压低 {i}") for i in range(30)]
        + [alarm("OTHER", message="电表离线")])
    await panel.as_role(Role.VIEWER)

    async def pages() -> list[tuple[int, list[str]]]:
        out = []
        for offset in (0, 10, 20, 30):
            body = (await panel.client.get("/api/v1/alarms", params={"q": "水压", "limit": 10,
                                                                     "offset": offset})).json()
            out.append((body["total"], [a["alarm_id"] for a in body["alarms"]]))
        return out

    few = await pages()  # one scan, sorted in Python
    monkeypatch.setattr(alarm_queries, "FEW_MATCHES", 5)
    many = await pages()  # count + time index
    assert few == many
    assert few[0] == (30, ["S01", "S00", "S03", "S02", "S05", "S04", "S07", "S06", "S09", "S08"])
    assert few[3] == (30, [])
