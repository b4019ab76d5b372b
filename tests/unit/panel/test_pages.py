"""The pages: overview, devices, alarms (live, history, CSV, ack/resolve), cameras and zones, tools, i18n."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import yaml

from edge.clock import to_us
from edge.panel import DiscoveredDevice, PanelHooks
from edge.panel.roles import Role
from edge.probes import DeviceProbe, ProbeFrame, ProbeValue
from edge.records import DeviceStatus, Severity
from tests.helpers.panel import alarm, readings
from tests.helpers.sql import sql_rows
from tests.unit.panel.conftest import T0, Panel


async def test_overview_counts_devices_alarms_and_backlog(panel: Panel) -> None:
    await panel.ctx.live.on_readings(readings("hyd-1", "pressure", "MPa", [0.3], start=T0, step=timedelta(0)))
    await panel.ctx.live.on_status(DeviceStatus("wm-2", False, T0, "timeout"))
    await panel.store.append_alarm_records([alarm("A1", severity=Severity.CRITICAL), alarm("A2", device_id="wm-2"),
                                            alarm("A3", device_id="wm-2", severity=Severity.WARNING)])
    await panel.as_role(Role.VIEWER)
    html = (await panel.client.get("/")).text
    assert re.search(r'id="open-alarms">3<', html)
    o = (await panel.client.get("/api/v1/overview")).json()
    assert o["devices"] == {"online": 1, "offline": 1, "unknown": 2, "disabled": 0}
    assert o["alarms_by_severity"] == {"critical": 1, "major": 1, "warning": 1, "info": 0}
    buildings = {b["name"]: b for b in o["buildings"]}
    assert buildings["1栋"]["open_alarms"] == 1 and buildings["2栋"]["open_alarms"] == 2
    assert buildings["2栋"]["offline"] == 1
    lanes = {b["lane"]: b for b in o["uplink_backlog"]}
    assert lanes["alarm"]["pending"] == 3 and lanes["telemetry"]["pending"] == 0
    assert o["estate_name"] == "阳光花园"


async def test_overview_shows_uplink_health_and_indicators(make_panel) -> None:
    from edge.records import IndicatorRecord

    hooks = PanelHooks(uplink_status=lambda: {"breaker": "open", "last_error": "platform 503"})
    async with make_panel(hooks=hooks) as panel:
        await panel.store.append_indicators([IndicatorRecord(
            "EST-PANEL", "GW-PANEL", "device.online_rate", "hour", T0, T0 + timedelta(hours=1), 0.985, "ratio",
            4, 1.0, ("004 8.1.7",))])
        await panel.as_role(Role.VIEWER)
        html = (await panel.client.get("/")).text
        assert "breaker-open" in html and "platform 503" in html
        assert "设备在线率" in html and "98.5 %" in html  # a ratio reads as a percentage


async def test_device_list_search_filter_and_paging(panel: Panel) -> None:
    await panel.as_role(Role.VIEWER)
    by_text = (await panel.client.get("/devices", params={"q": "水表"})).text
    assert "wm-2" in by_text and "hyd-1" not in by_text
    by_building = (await panel.client.get("/devices", params={"building": "1栋"})).text
    assert "hyd-1" in by_building and "em-1" in by_building and "wm-2" not in by_building
    by_category = (await panel.client.get("/devices", params={"category": "fire_pressure"})).text
    assert "hyd-1" in by_category and "em-1" not in by_category
    await panel.ctx.live.on_status(DeviceStatus("wm-2", False, T0))
    offline = (await panel.client.get("/devices", params={"state": "offline"})).text
    assert "wm-2" in offline and "hyd-1" not in offline
    api = (await panel.client.get("/api/v1/devices", params={"limit": 2, "offset": 1})).json()
    assert api["total"] == 4 and len(api["devices"]) == 2


async def test_device_page_has_live_values_and_both_chart_ranges(panel: Panel) -> None:
    now = panel.clock.now()
    values = [0.30 + 0.01 * (i % 7) for i in range(400)]
    await panel.ctx.live.on_readings(readings("hyd-1", "pressure", "MPa", values, start=now - timedelta(days=3),
                                              step=timedelta(minutes=10)))
    await panel.ctx.live.flush()
    await panel.as_role(Role.VIEWER)
    day = (await panel.client.get("/devices/hyd-1")).text
    week = (await panel.client.get("/devices/hyd-1", params={"range": "7d"})).text
    for html in (day, week):
        assert '<svg class="chart"' in html and "<polyline" in html and 'class="limit"' in html
        assert 'data-point="pressure"' in html
    assert re.search(r">\d\d-\d\d<", week)  # day ticks on the 7 d chart
    series = (await panel.client.get("/api/v1/devices/hyd-1/series", params={"point": "pressure"})).json()
    assert series["resolution"] == "5m" and 100 < len(series["buckets"]) <= 145
    week_series = (await panel.client.get("/api/v1/devices/hyd-1/series",
                                          params={"point": "pressure", "range": "7d"})).json()
    assert week_series["resolution"] == "1h" and 60 < len(week_series["buckets"]) <= 73
    detail = (await panel.client.get("/api/v1/devices/hyd-1")).json()
    assert detail["latest"][0]["value"] == values[-1] and detail["thresholds"]["pressure"]["low"] == 0.07
    assert (await panel.client.get("/devices/nope")).status_code == 404


async def test_live_alarm_rows_answer_304_until_something_changes(panel: Panel) -> None:
    await panel.store.append_alarm_records([alarm("A1")])
    csrf = await panel.as_role(Role.OPERATOR)
    first = await panel.client.get("/alarms/rows")
    etag = first.headers["etag"]
    assert first.status_code == 200 and "A1" in first.text and first.headers["x-alarm-total"] == "1"
    assert (await panel.client.get("/alarms/rows", headers={"if-none-match": etag})).status_code == 304
    await panel.store.append_alarm_records([alarm("A2", severity=Severity.CRITICAL)])
    changed = await panel.client.get("/alarms/rows", headers={"if-none-match": etag})
    assert changed.status_code == 200 and changed.text.index("A2") < changed.text.index("A1")  # critical first
    await panel.client.post("/alarms/A2/resolve", data={"note": "pump restarted", "csrf_token": csrf})
    after = await panel.client.get("/alarms/rows", headers={"if-none-match": changed.headers["etag"]})
    assert after.status_code == 200 and "A2" not in after.text and after.headers["x-alarm-total"] == "1"


async def test_alarm_filters(panel: Panel) -> None:
    await panel.store.append_alarm_records([
        alarm("A1", severity=Severity.CRITICAL), alarm("A2", device_id="wm-2", message="水表读数异常"),
        alarm("A3", device_id="em-1", code="device.offline", message="电表离线"),
    ])
    await panel.as_role(Role.VIEWER)

    async def ids(path: str, **params: str) -> set[str]:
        html = (await panel.client.get(path, params=params)).text
        return set(re.findall(r'href="/alarms/(A\d)"', html))

    assert await ids("/alarms", severity="critical") == {"A1"}
    assert await ids("/alarms", building="1栋") == {"A1", "A3"}
    assert await ids("/alarms", device="水表") == {"A2"}
    assert await ids("/alarms", q="离线") == {"A3"}
    assert await ids("/alarms/history", code="device.offline") == {"A3"}


async def test_ack_then_resolve_with_notes(panel: Panel) -> None:
    await panel.store.append_alarm_records([alarm("A1")])
    csrf = await panel.as_role(Role.OPERATOR)
    ack = await panel.client.post("/alarms/A1/ack", data={"note": "on my way", "csrf_token": csrf})
    assert ack.status_code == 303 and ack.headers["location"] == "/alarms/A1?msg=alarm.acked"
    again = await panel.client.post("/alarms/A1/ack", data={"note": "", "csrf_token": csrf})
    assert again.status_code == 409
    no_note = await panel.client.post("/alarms/A1/resolve", data={"note": "   ", "csrf_token": csrf})
    assert no_note.status_code == 422 and "请填写处置说明" in no_note.text
    done = await panel.client.post("/alarms/A1/resolve", data={"note": "valve reopened", "csrf_token": csrf})
    assert done.status_code == 303
    steps = await sql_rows(panel.store, "SELECT state, actor, note FROM alarm_log WHERE alarm_id='A1' ORDER BY id")
    assert steps == [("raised", "system", ""), ("acknowledged", "operator-user", "on my way"),
                     ("resolved", "operator-user", "valve reopened")]
    page = (await panel.client.get("/alarms/A1")).text
    assert "valve reopened" in page and 'id="resolve-form"' not in page
    audited = [(e.action, e.ok) for e in await panel.ctx.audit.search(username="operator-user")]
    assert ("alarm.resolve", True) in audited and ("alarm.acknowledge", False) in audited
    assert (await panel.client.post("/alarms/NOPE/ack", data={"csrf_token": csrf})).status_code == 404


async def test_cleared_alarm_can_still_be_resolved(panel: Panel) -> None:
    from edge.records import AlarmState

    await panel.store.append_alarm_records([alarm("A1")])
    await panel.store.append_alarm_records([alarm("A1", state=AlarmState.CLEARED)])
    csrf = await panel.as_role(Role.OPERATOR)
    page = (await panel.client.get("/alarms/A1")).text
    assert 'id="ack-form"' not in page and 'id="resolve-form"' in page
    assert (await panel.client.post("/alarms/A1/resolve", data={"note": "checked", "csrf_token": csrf})
            ).status_code == 303


async def test_history_by_date_and_csv_export(panel: Panel) -> None:
    old = panel.clock.now() - timedelta(days=10)
    await panel.store.append_alarm_records([alarm("OLD", ts=old, message="旧告警"), alarm("NEW", message="新告警")])
    await panel.as_role(Role.VIEWER)
    day = (old + timedelta(hours=8)).date().isoformat()  # the local (UTC+8) date of the old alarm
    html = (await panel.client.get("/alarms/history", params={"since": day, "until": day})).text
    assert "/alarms/OLD" in html and "/alarms/NEW" not in html
    assert (await panel.client.get("/alarms/history", params={"since": "not-a-date"})).status_code == 422
    response = await panel.client.get("/alarms/export.csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert rows[0][0] == "alarm_id" and [r[0] for r in rows[1:]] == ["NEW", "OLD"]
    assert rows[1][3] == "1栋消火栓压力" and rows[1][4] == "1栋" and rows[1][8].endswith("+08:00")
    filtered = await panel.client.get("/alarms/export.csv", params={"q": "旧"})
    assert [r[0] for r in list(csv.reader(io.StringIO(filtered.text.lstrip("\ufeff"))))[1:]] == ["OLD"]


async def test_csv_export_pages_through_many_alarms(panel: Panel) -> None:
    base = panel.clock.now()
    await panel.store.append_alarm_records([alarm(f"B{i:05d}", ts=base - timedelta(seconds=i)) for i in range(4500)])
    await panel.as_role(Role.VIEWER)
    rows = list(csv.reader(io.StringIO((await panel.client.get("/alarms/export.csv")).text.lstrip("\ufeff"))))
    assert len(rows) == 4501 and rows[1][0] == "B00000" and rows[-1][0] == "B04499"
    assert len({r[0] for r in rows[1:]}) == 4500


async def test_evidence_images_show_on_the_alarm(panel: Panel) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"0" * 100 + b"\xff\xd9"
    await panel.store.append_alarm_records([alarm("A1", evidence=jpeg)])
    await panel.as_role(Role.VIEWER)
    html = (await panel.client.get("/alarms/A1")).text
    name = re.search(r'<img src="/evidence/([^"]+)"', html)
    assert name is not None
    image = await panel.client.get(f"/evidence/{name.group(1)}")
    assert image.content == jpeg and image.headers["content-type"] == "image/jpeg"


async def test_language_switch(panel: Panel) -> None:
    await panel.as_role(Role.VIEWER)
    zh = await panel.client.get("/alarms")
    assert "实时告警" in zh.text and zh.headers["content-language"] == "zh-CN"
    switched = await panel.client.post("/lang", data={"lang": "en", "next": "/alarms",
                                                      "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"',
                                                                              zh.text).group(1)})  # type: ignore[union-attr]
    assert switched.status_code == 303 and switched.headers["location"] == "/alarms"
    en = await panel.client.get("/alarms")
    assert "Live alarms" in en.text and "实时告警" not in en.text and '<html lang="en">' in en.text


async def test_camera_page_and_zone_save(panel: Panel) -> None:
    csrf = await panel.as_role(Role.ADMIN)
    page = (await panel.client.get("/cameras/cam-1")).text
    assert "lane-north" in page and "北侧通道" in page
    original = panel.config_path.read_text(encoding="utf-8")
    zones = ('[{"id": "lane-north", "kind": "fire_lane", "name": "北侧通道（新）", "points": '
             '[{"x": 20, "y": 210}, {"x": 320, "y": 210}, {"x": 320, "y": 430}]},'
             ' {"id": "lobby", "kind": "ebike_entry", "name": null, "points": '
             '[{"x": 400, "y": 100}, {"x": 500, "y": 100}, {"x": 500, "y": 200}, {"x": 400, "y": 200}]}]')
    saved = await panel.client.post("/cameras/cam-1/zones", data={"zones": zones, "csrf_token": csrf})
    assert saved.status_code == 303 and saved.headers["location"] == "/cameras/cam-1?msg=zones.saved"
    new_text = panel.config_path.read_text(encoding="utf-8")
    camera = yaml.safe_load(new_text.replace("!secret", ""))["cameras"][0]
    assert [z["id"] for z in camera["zones"]] == ["lane-north", "lobby"]
    assert camera["zones"][0]["polygon"] == [[20, 210], [320, 210], [320, 430]]
    assert camera["zones"][0]["dwell_s"] == 90  # kept from the old zone
    assert "# estate config written by the panel tests" in new_text and "!secret platform_client_secret" in new_text
    backups = panel.ctx.files.backups()
    assert len(backups) == 1 and backups[0].read_text(encoding="utf-8") == original
    assert panel.reloads == [1]
    assert [z.id for z in panel.ctx.config.index.camera_by_id["cam-1"].zones] == ["lane-north", "lobby"]
    assert (await panel.ctx.audit.search(action="zones.save"))[0].detail["zones"] == ["lane-north", "lobby"]


async def test_invalid_zone_is_refused_and_config_untouched(panel: Panel) -> None:
    csrf = await panel.as_role(Role.ADMIN)
    original = panel.config_path.read_text(encoding="utf-8")
    degenerate = ('[{"id": "flat", "kind": "fire_lane", "points": [{"x": 1, "y": 1}, {"x": 2, "y": 1},'
                  ' {"x": 1.5, "y": 1}]}]')
    response = await panel.client.post("/cameras/cam-1/zones", data={"zones": degenerate, "csrf_token": csrf})
    assert response.status_code == 422 and "degenerate" in response.text
    not_json = await panel.client.post("/cameras/cam-1/zones", data={"zones": "[{", "csrf_token": csrf})
    assert not_json.status_code == 422
    assert panel.config_path.read_text(encoding="utf-8") == original and panel.ctx.files.backups() == []
    assert panel.reloads == []
    operator = panel.new_client()
    op_csrf = await panel.as_role(Role.OPERATOR, client=operator)
    assert (await operator.post("/cameras/cam-1/zones", data={"zones": "[]", "csrf_token": op_csrf})).status_code == 403


async def test_camera_frame_with_zones_and_detections(make_panel, shared_dir) -> None:  # type: ignore[no-untyped-def]
    from edge.panel import CameraFrame, FrameDetection
    from edge.panel.cameras import jpeg_size

    jpeg = (shared_dir / "media" / "a7_frigate_ground-plane.jpg").read_bytes()
    width, height = jpeg_size(jpeg)  # type: ignore[misc]

    async def snapshot(camera_id: str) -> CameraFrame | None:
        return CameraFrame(jpeg, width, height, to_us(T0), (FrameDetection("car", 0.9, 10, 20, 110, 90),))

    async with make_panel(hooks=PanelHooks(snapshot=snapshot)) as panel:
        await panel.as_role(Role.ADMIN)
        page = (await panel.client.get("/cameras/cam-1")).text
        assert f'viewBox="0 0 {width} {height}"' in page and 'class="zone zone-fire_lane"' in page
        assert 'class="det"' in page and "小汽车 90%" in page and 'id="zone-editor"' in page
        frame = await panel.client.get("/cameras/cam-1/frame.jpg")
        assert frame.content == jpeg
        api = (await panel.client.get("/api/v1/cameras/cam-1")).json()
        assert api["frame_width"] == width and api["detections"][0]["label"] == "car"
        assert api["zones"][0]["points"][0] == {"x": 10.0, "y": 200.0}


async def test_tools_config_check_shows_errors_in_place(panel: Panel) -> None:
    csrf = await panel.as_role(Role.ADMIN)
    assert 'id="check-ok"' in (await panel.client.get("/tools")).text
    broken = panel.config_path.read_text(encoding="utf-8").replace("bus: syn", "bus: missing", 1)
    response = await panel.client.post("/tools/check", data={"text": broken, "csrf_token": csrf})
    assert response.status_code == 422
    line = next(i for i, text in enumerate(broken.split("\n"), 1) if "bus: missing" in text)
    assert re.search(rf'<li value="{line}" class="has-problem"><code>[^<]*bus: missing</code><div class="problem"',
                     response.text)
    # The same file broken on disk (hand edit): the tools page shows it, the panel keeps the last good config.
    panel.config_path.write_text(broken, encoding="utf-8")
    page = (await panel.client.get("/tools")).text
    assert 'id="check-failed"' in page and "has-problem" in page
    assert "配置文件有错误" in page and len(panel.ctx.config.index.devices) == 4


async def test_tools_upload_replaces_valid_and_refuses_invalid(panel: Panel) -> None:
    csrf = await panel.as_role(Role.ADMIN)
    original = panel.config_path.read_text(encoding="utf-8")
    bad = await panel.client.post("/tools/upload", data={"csrf_token": csrf},
                                  files={"file": ("new.yaml", original.replace("syn", "x").encode(), "text/yaml")})
    assert bad.status_code == 422 and "has-problem" in bad.text
    assert panel.config_path.read_text(encoding="utf-8") == original and panel.reloads == []
    good_text = original.replace("阳光花园", "阳光花园（二期）")
    good = await panel.client.post("/tools/upload", data={"csrf_token": csrf},
                                   files={"file": ("new.yaml", good_text.encode(), "text/yaml")})
    assert good.status_code == 303 and good.headers["location"] == "/tools?msg=config.uploaded"
    assert panel.config_path.read_text(encoding="utf-8") == good_text and panel.reloads == [1]
    assert "阳光花园（二期）" in (await panel.client.get("/")).text
    download = await panel.client.get("/tools/config.yaml")
    assert download.text == good_text and "attachment" in download.headers["content-disposition"]
    backup = panel.ctx.files.backups()[0].name
    tools = (await panel.client.get("/tools")).text
    assert backup in tools
    assert (await panel.client.get(f"/tools/backups/{backup}")).text == original
    assert (await panel.client.get("/tools/backups/..%2Festate.yaml")).status_code == 404
    binary = await panel.client.post("/tools/check", data={"csrf_token": csrf},
                                     files={"file": ("x.yaml", b"\xff\xfe\x00", "text/yaml")})
    assert binary.status_code == 422


async def test_tools_test_device_and_discovery(make_panel) -> None:  # type: ignore[no-untyped-def]
    async def test_device(device_id: str) -> DeviceProbe:
        return DeviceProbe(device_id, True, (ProbeFrame("tx", bytes.fromhex("010300000002c40b")),
                                             ProbeFrame("rx", bytes.fromhex("0103043e99999a1f3c"))),
                           (ProbeValue("pressure", 0.3, "MPa", "0x3E99 0x999A"),), duration_ms=12.5)

    async def discover() -> list[DiscoveredDevice]:
        return [DiscoveredDevice("urn:uuid:cam-a", ("http://127.0.0.1/onvif/device_service",), (), "Gate", "DS-2CD"),
                DiscoveredDevice("urn:uuid:cam-b", ("http://10.9.9.9:8000/onvif",), (), "Lobby", "IPC")]

    async with make_panel(hooks=PanelHooks(test_device=test_device, discover=discover)) as panel:
        csrf = await panel.as_role(Role.ADMIN)
        await panel.client.post("/tools/test-device", data={"device_id": "hyd-1", "csrf_token": csrf})
        page = (await panel.client.get("/tools")).text
        assert "01 03 00 00 00 02 c4 0b" in page and "0x3E99 0x999A" in page and "12.5 ms" in page
        await panel.client.post("/tools/discovery", data={"csrf_token": csrf})
        page = (await panel.client.get("/tools")).text
        assert "urn:uuid:cam-a" in page and 'href="/cameras/cam-1"' in page  # 127.0.0.1 is cam-1's host
        unknown = await panel.client.post("/tools/test-device", data={"device_id": "nope", "csrf_token": csrf})
        assert unknown.status_code == 404
        api = await panel.client.post("/api/v1/tools/test-device", json={"device_id": "hyd-1"},
                                      headers={"x-csrf-token": csrf})
        assert api.json()["frames"][1]["hex"] == "01 03 04 3e 99 99 9a 1f 3c"
        assert {e.action for e in await panel.ctx.audit.search()} >= {"tools.test_device", "tools.discovery"}


async def test_failing_test_device_is_a_result_not_a_crash(make_panel) -> None:  # type: ignore[no-untyped-def]
    async def test_device(device_id: str) -> DeviceProbe:
        raise TimeoutError("no answer from unit 3 within 1.0 s")

    async with make_panel(hooks=PanelHooks(test_device=test_device)) as panel:
        csrf = await panel.as_role(Role.ADMIN)
        api = await panel.client.post("/api/v1/tools/test-device", json={"device_id": "hyd-1"},
                                      headers={"x-csrf-token": csrf})
        assert api.status_code == 200 and api.json()["ok"] is False and "no answer" in api.json()["error"]


async def test_tools_without_hooks_say_unavailable(panel: Panel) -> None:
    csrf = await panel.as_role(Role.ADMIN)
    assert "此网关未提供该工具" in (await panel.client.get("/tools")).text
    response = await panel.client.post("/api/v1/tools/discovery", headers={"x-csrf-token": csrf})
    assert response.status_code == 404


async def test_audit_log_page_for_admins(panel: Panel) -> None:
    await panel.as_role(Role.ADMIN)
    html = (await panel.client.get("/admin/audit", params={"action": "login"})).text
    assert "admin-user" in html and ">登录<" in html and 'title="login"' in html  # the action by its name


async def test_metrics(panel: Panel) -> None:
    await panel.store.append_alarm_records([alarm("A1", severity=Severity.CRITICAL)])
    await panel.as_role(Role.VIEWER)
    await panel.client.get("/devices")
    text = (await panel.client.get("/metrics")).text
    assert 'estate_edge_open_alarms{severity="critical"} 1.0' in text
    assert 'estate_edge_devices{state="unknown"} 4.0' in text
    assert 'estate_edge_uplink_pending_records{lane="alarm"} 1.0' in text
    assert 'estate_edge_panel_requests_total{method="GET",route="/devices",status="200"}' in text
    assert 'estate_edge_panel_logins_total{result="ok"} 1.0' in text


async def test_metrics_token(make_panel) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers.panel import panel_settings

    async with make_panel(settings=panel_settings(metrics_token="scrape-me")) as panel:
        assert (await panel.client.get("/metrics")).status_code == 401
        ok = await panel.client.get("/metrics", headers={"authorization": "Bearer scrape-me"})
        assert ok.status_code == 200 and "estate_edge_devices" in ok.text


async def test_api_docs_for_admins_only(panel: Panel) -> None:
    await panel.as_role(Role.ADMIN)
    docs = (await panel.client.get("/api/docs")).text
    assert "/api/v1/alarms/{alarm_id}/resolve" in docs and "NoteIn" in docs
    schema = (await panel.client.get("/api/v1/openapi.json")).json()
    assert schema["openapi"].startswith("3.") and "/api/v1/alarms" in schema["paths"]
    assert not any(p.startswith(("/alarms", "/login")) for p in schema["paths"])  # pages stay out of the API
    assert (await panel.new_client().get("/api/v1/openapi.json")).status_code == 401
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert (await panel.client.get(path)).status_code == 404
