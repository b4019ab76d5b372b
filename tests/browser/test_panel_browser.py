"""The panel in a real headless Chromium: login, role limits, ack/resolve, drawing a zone, language."""

from __future__ import annotations

import re

import pytest
import yaml
from playwright.sync_api import Page, expect

from edge.records import Severity
from tests.browser.conftest import shot
from tests.helpers.panel import PASSWORD, PanelServer, alarm
from tests.helpers.sql import sql_rows

pytestmark = pytest.mark.browser


def login(page: Page, server: PanelServer, username: str, password: str = PASSWORD) -> None:
    page.goto(server.url + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-submit")


def test_login(page: Page, server: PanelServer) -> None:
    page.goto(server.url + "/alarms")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Falarms$"))
    login(page, server, "viewer1", "not the password")
    expect(page.locator(".flash.error")).to_contain_text("用户名或密码错误")
    login(page, server, "viewer1")
    expect(page).to_have_url(server.url + "/")
    expect(page.locator("h1")).to_have_text("小区总览")
    expect(page.locator(".brand")).to_contain_text("阳光花园")
    expect(page.locator(".who")).to_contain_text("viewer1")
    shot(page, "login")
    page.click("#logout")
    expect(page).to_have_url(server.url + "/login")


def test_role_limits(page: Page, server: PanelServer) -> None:
    login(page, server, "viewer1")
    nav = page.locator(".main-nav")
    expect(nav).to_contain_text("告警")
    expect(nav).not_to_contain_text("安装工具")
    page.goto(server.url + "/alarms/ALARM-HYD-1")
    expect(page.locator("#read-only")).to_be_visible()
    expect(page.locator("#ack-form")).to_have_count(0)
    response = page.goto(server.url + "/tools")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_contain_text("403")
    shot(page, "role-limits-viewer")
    page.click("#logout")
    login(page, server, "operator1")
    page.goto(server.url + "/alarms/ALARM-HYD-1")
    expect(page.locator("#resolve-form")).to_be_visible()
    expect(page.locator(".main-nav")).not_to_contain_text("账户")
    shot(page, "role-limits-operator")


def test_acknowledge_and_resolve_an_alarm(page: Page, server: PanelServer) -> None:
    server.call(server.store.append_alarm_records([alarm("ALARM-LANE-7", code="fire.lane_blocked",  # type: ignore[union-attr]
                                                         device_id="cam-1", message="消防通道被占用",
                                                         severity=Severity.CRITICAL)]))
    login(page, server, "operator1")
    page.goto(server.url + "/alarms")
    row = page.locator('tr[data-alarm="ALARM-LANE-7"]')
    expect(row).to_contain_text("消防通道被占用")
    row.locator("a").first.click()
    expect(page.locator("#alarm-state")).to_have_text("未处理")
    page.fill("#ack-note", "保安已前往")
    page.click("#ack-button")
    expect(page.locator(".flash.ok")).to_have_text("已确认")
    expect(page.locator("#alarm-state")).to_have_text("已确认")
    page.fill("#resolve-note", "车辆已挪走，通道畅通 <b>ok</b>")
    page.click("#resolve-button")
    expect(page.locator("#alarm-state")).to_have_text("已处置")
    expect(page.locator("#alarm-note")).to_have_text("车辆已挪走，通道畅通 <b>ok</b>")
    expect(page.locator("#alarm-steps li")).to_have_count(3)
    shot(page, "alarm-resolved")
    steps = server.call(sql_rows(server.store,   # type: ignore[union-attr]
        "SELECT state, actor FROM alarm_log WHERE alarm_id='ALARM-LANE-7' ORDER BY id"))
    assert steps == [("raised", "system"), ("acknowledged", "operator1"), ("resolved", "operator1")]


def test_live_alarm_list_shows_a_new_alarm_without_reload(page: Page, server: PanelServer) -> None:
    login(page, server, "viewer1")
    page.goto(server.url + "/alarms")
    before = int(page.locator("#alarm-total").inner_text())
    server.call(server.store.append_alarm_records([alarm("ALARM-NEW-1", message="2栋水箱低水位",  # type: ignore[union-attr]
                                                         device_id="wm-2")]))
    expect(page.locator('tr[data-alarm="ALARM-NEW-1"]')).to_be_visible(timeout=8000)
    expect(page.locator("#alarm-total")).to_have_text(str(before + 1))
    shot(page, "alarms-live")


def test_draw_and_save_a_zone(page: Page, server: PanelServer) -> None:
    login(page, server, "admin1")
    page.goto(server.url + "/cameras/cam-1")
    canvas = page.locator("#zone-canvas")
    expect(canvas).to_be_visible()
    page.click("#zone-new")
    box = canvas.bounding_box()
    assert box is not None
    width, height = 1168, 750  # the frame's pixels (the SVG's viewBox)
    corners = [(0.55, 0.55), (0.80, 0.55), (0.85, 0.85), (0.50, 0.85)]
    for fx, fy in corners:
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    expect(canvas.locator("circle.vertex")).to_have_count(4)
    page.click("#zone-finish")
    item = page.locator(".zone-item").last
    item.locator(".zone-id").fill("lane-south")
    item.locator(".zone-name").fill("南侧消防通道")
    expect(canvas.locator("polygon.zone")).to_have_count(2)
    shot(page, "zone-drawn")
    page.click("#zone-save")
    expect(page.locator(".flash.ok")).to_contain_text("区域已保存")
    expect(page.locator("#zone-table")).to_contain_text("南侧消防通道")
    shot(page, "zone-saved")
    data = yaml.safe_load(server.config_path.read_text(encoding="utf-8").replace("!secret", ""))
    zones = {z["id"]: z for z in data["cameras"][0]["zones"]}
    assert set(zones) == {"lane-north", "lane-south"}
    polygon = zones["lane-south"]["polygon"]
    assert len(polygon) == 4 and zones["lane-south"]["kind"] == "fire_lane"
    for (fx, fy), (x, y) in zip(corners, polygon, strict=True):
        assert abs(x - fx * width) < 4 and abs(y - fy * height) < 4
    assert "# estate config written by the panel tests" in server.config_path.read_text(encoding="utf-8")
    assert list(server.tmp.glob("estate.yaml.bak-*")), "the previous config must be kept as a backup"
    assert server.reloads  # type: ignore[attr-defined]


def test_switch_language(page: Page, server: PanelServer) -> None:
    login(page, server, "operator1")
    expect(page.locator("h1")).to_have_text("小区总览")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.click("#lang-en")
    expect(page.locator("h1")).to_have_text("Estate overview")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.click(".main-nav >> text=Alarms")
    expect(page.locator("h1")).to_contain_text("Live alarms")
    shot(page, "language-en")
    page.click("#lang-zh")
    expect(page.locator("h1")).to_contain_text("实时告警")
    shot(page, "language-zh")


def test_device_page_chart_and_live_values(page: Page, server: PanelServer) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.helpers.panel import readings

    now = datetime.now(UTC)
    values = [0.30 + 0.02 * ((i % 12) - 6) / 6 for i in range(300)]
    server.call(server.ctx.live.on_readings(readings("hyd-1", "pressure", "MPa", values,
                                                     start=now - timedelta(hours=23), step=timedelta(minutes=4.6))))
    login(page, server, "viewer1")
    page.goto(server.url + "/devices?q=消火栓")
    page.click("text=1栋消火栓压力")
    expect(page.locator("svg.chart polyline.line")).to_have_count(1)
    expect(page.locator('#live-values tr[data-point="pressure"] .u')).to_have_text("MPa")
    server.call(server.ctx.live.on_readings(readings("hyd-1", "pressure", "MPa", [0.123], start=datetime.now(UTC),
                                                     step=timedelta(0))))
    expect(page.locator('#live-values tr[data-point="pressure"] .v')).to_have_text("0.123", timeout=8000)
    page.click("#range-7d")
    expect(page.locator("#range-7d")).to_have_class(re.compile("active"))
    shot(page, "device-chart")
