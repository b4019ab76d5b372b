"""One AlarmQuery for every alarm list: the pages, the CSV export and the JSON API read a filter alike."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from edge.panel.roles import Role
from edge.records import Severity
from tests.helpers.panel import alarm
from tests.unit.panel.conftest import Panel


def _page_ids(html: str) -> list[str]:
    return re.findall(r'href="/alarms/(A\d+)"', html)


async def test_same_filter_words_give_the_same_alarms_on_every_surface(panel: Panel) -> None:
    now = panel.clock.now()
    await panel.store.append_alarm_records([
        alarm("A1", ts=now - timedelta(days=3), severity=Severity.CRITICAL),
        alarm("A2", ts=now - timedelta(hours=1), device_id="wm-2", severity=Severity.CRITICAL),
        alarm("A3", ts=now - timedelta(hours=2), device_id="wm-2", severity=Severity.WARNING),
    ])
    await panel.as_role(Role.VIEWER)
    today = (now + timedelta(hours=8)).date().isoformat()  # the estate's zone is UTC+8
    words = {"building": "2栋", "severity": "critical", "since": today}
    api = (await panel.client.get("/api/v1/alarms", params=words)).json()
    assert [a["alarm_id"] for a in api["alarms"]] == ["A2"]
    history = (await panel.client.get("/alarms/history", params=words)).text
    assert _page_ids(history) == ["A2"]
    exported = (await panel.client.get("/alarms/export.csv", params=words)).text.lstrip("\ufeff")
    assert [row[0] for row in csv.reader(io.StringIO(exported))][1:] == ["A2"]
    live = (await panel.client.get("/alarms", params={"building": "2栋", "severity": "critical"})).text
    assert _page_ids(live) == ["A2"]


async def test_device_words_and_exact_device(panel: Panel) -> None:
    now = panel.clock.now()
    await panel.store.append_alarm_records([
        alarm("A1", ts=now - timedelta(hours=2)),
        alarm("A2", ts=now - timedelta(hours=1), device_id="wm-2"),
    ])
    await panel.as_role(Role.VIEWER)
    by_name = (await panel.client.get("/api/v1/alarms", params={"device": "水表"})).json()  # a name text
    assert [a["alarm_id"] for a in by_name["alarms"]] == ["A2"]
    exact = (await panel.client.get("/api/v1/alarms", params={"device_id": "hyd-1"})).json()
    assert [a["alarm_id"] for a in exact["alarms"]] == ["A1"]
    elsewhere = (await panel.client.get("/api/v1/alarms", params={"device_id": "hyd-1", "building": "2栋"})).json()
    assert elsewhere["alarms"] == [] and elsewhere["total"] == 0


async def test_bad_filter_words_are_rejected_naming_the_field(panel: Panel) -> None:
    await panel.as_role(Role.VIEWER)
    for path in ("/api/v1/alarms", "/alarms/history", "/alarms/export.csv"):
        bad_day = await panel.client.get(path, params={"until": "2026-02-30"})
        assert bad_day.status_code == 422 and "until" in bad_day.text, path
        naive = await panel.client.get(path, params={"since": "2026-01-01T00:00:00"})
        assert naive.status_code == 422 and "since" in naive.text and "offset" in naive.text, path
    severity = await panel.client.get("/api/v1/alarms", params={"severity": "urgent"})
    assert severity.status_code == 422 and "severity" in severity.text
