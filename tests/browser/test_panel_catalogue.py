"""Every word on the panel's main pages is in the active language's catalogue, in Chinese and English.

The panel shows real data: the module runs ``estate-edge demo`` (the gateway against every
simulator: Modbus TCP and RS-485 meters and sensors, DL/T 645 and CJ/T 188 lines, the fire panel,
two ONVIF/RTSP cameras, the platform) in its own folder, creates the first admin through the
``/setup`` page with the token the log prints, and waits until the alarms page holds both a camera
alarm with its picture and a device alarm. Then, per language, Chromium opens the overview,
devices (the list, the lift and the contact-input module), alarms, an alarm of each kind, cameras
(the list and one camera) and tools; ``catalogue_check`` takes every shown
string apart into catalogue text, proper names (from the run's config) and numbers, and the test
fails naming each page and string that is left over. Each page is saved as a screenshot,
``tests/artifacts/catalogue/<lang>-<page>.png`` (git-ignored), in both languages.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from tests.browser.catalogue_check import ProperNames, strings_outside, visible_texts
from tests.browser.conftest import ARTIFACTS

# The first test waits for the demo's data (up to DATA_TIMEOUT_S) besides its own pages.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
SHOTS = ARTIFACTS / "catalogue"
ADMIN, ADMIN_PASSWORD = "admin", "demo panel 4 staff words"
DATA_TIMEOUT_S = 300  # camera analysis on two busy cores: the demo test's own bound
CAMERA_CODES = ("fire.lane_blocked", "fire.ebike_entry")


@dataclass
class DemoPanel:
    url: str
    workdir: Path
    names: ProperNames
    camera_alarm: str
    device_alarm: str


class _Tags(yaml.SafeLoader):
    """The run's config keeps ``!secret`` tags; their names are all this check needs."""


_Tags.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node))


def _wait_for(what: str, probe, log: Path, proc: subprocess.Popen[bytes], timeout_s: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        assert proc.poll() is None, f"the demo stopped while waiting for {what}:\n{log.read_text()[-3000:]}"
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


def _alarms(db: Path) -> tuple[str, str] | None:
    """(a camera alarm with a picture, a device alarm) once the demo's store holds both."""
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            rows = conn.execute("SELECT alarm_id, code, evidence_path FROM alarms ORDER BY raised_us").fetchall()
    except sqlite3.Error:
        return None
    camera = next((a for a, code, picture in rows if code in CAMERA_CODES and picture), None)
    device = next((a for a, code, _picture in rows if code not in CAMERA_CODES and not code.startswith("camera.")),
                  None)
    return (camera, device) if camera and device else None


def _device_given_names(db: Path) -> list[str]:
    """Names a device reports itself: the fire panel's component descriptions ("3栋12层 感烟探测器")."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        rows = conn.execute("SELECT data FROM alarm_log UNION ALL SELECT data FROM events").fetchall()
    out = []
    for (data,) in rows:
        params = (json.loads(data).get("_message") or {}).get("params") or {}
        if isinstance(params.get("description"), str):
            out.append(params["description"])
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path, browser: Browser) -> Iterator[DemoPanel]:
    tmp = tmp_path_factory.mktemp("catalogue")
    workdir, log = tmp / "demo", tmp / "demo.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EDGE_SHARED_DIR": str(shared_dir)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "demo", "--workdir", str(workdir),
                                 "--duration", "1200"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        text = lambda: log.read_text(encoding="utf-8", errors="replace")  # noqa: E731
        url = _wait_for("panel address in the banner", lambda: (m := re.search(
            r"panel / status page: +(http://\S+?)/?$", text(), re.M)) and m.group(1), log, proc, 120)
        token = _wait_for("setup token in the log", lambda: (m := re.search(
            r"setup token: (\S+)", text())) and m.group(1), log, proc, 120)
        context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
        page = context.new_page()
        page.goto(url + "/setup")
        page.fill("#token", token)
        page.fill("#username", ADMIN)
        page.fill("#password", ADMIN_PASSWORD)
        page.fill("#password2", ADMIN_PASSWORD)
        page.click("#setup-form button[type=submit]")
        expect(page.locator(".who")).to_contain_text(ADMIN)
        context.close()
        camera, device = _wait_for("camera alarm with a picture and device alarm in the panel's store",
                                   lambda: _alarms(workdir / "estate-edge.db"), log, proc, DATA_TIMEOUT_S)
        doc = yaml.load((workdir / "estate.yaml").read_text(encoding="utf-8"), Loader=_Tags)
        yield DemoPanel(url, workdir, ProperNames.from_config(doc, [ADMIN]), camera, device)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def pages(browser: Browser, demo: DemoPanel) -> Iterator[Page]:
    """One logged-in browser tab for the module (the language cookie is switched per test)."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(demo.url + "/login")
    page.fill("#username", ADMIN)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("#login-submit")
    expect(page.locator(".who")).to_contain_text(ADMIN)
    yield page
    context.close()


def _pages(demo: DemoPanel) -> list[tuple[str, str]]:
    return [("overview", "/"), ("devices", "/devices"), ("device-lift", "/devices/B2-LIFT-01"),
            ("device-inputs", "/devices/B1-DI-01"), ("alarms", "/alarms"),
            ("alarm-camera", f"/alarms/{demo.camera_alarm}"), ("alarm-device", f"/alarms/{demo.device_alarm}"),
            ("alarm-history", "/alarms/history"), ("cameras", "/cameras"), ("camera", "/cameras/CAM-B1-LANE"),
            ("tools", "/tools"), ("users", "/admin/users"), ("audit", "/admin/audit"), ("account", "/account")]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_shown_string_is_in_the_catalogue(pages: Page, demo: DemoPanel, lang: str) -> None:
    page = pages
    page.goto(demo.url + "/")
    page.click("#lang-zh" if lang == "zh-CN" else "#lang-en")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for name, path in _pages(demo):
        response = page.goto(demo.url + path)
        assert response is not None and response.status == 200, f"{path}: HTTP {response and response.status}"
        page.wait_for_load_state("networkidle")
        if name == "alarms":
            expect(page.locator("tr[data-alarm]").first).to_be_visible()
        if name == "alarm-camera":
            expect(page.locator(".evidence img").first).to_be_visible()
        page.screenshot(path=str(SHOTS / f"{lang}-{name}.png"), full_page=True)
        texts = visible_texts(page)
        demo.names.add(*_device_given_names(demo.workdir / "estate-edge.db"))  # read after: all the page can show
        for text, rest in strings_outside(texts, lang, demo.names):
            problems.append(f"{lang} {path}: {rest!r} in {text[:160]!r}")
    assert not problems, f"{len(problems)} strings outside the {lang} catalogue:\n" + "\n".join(problems)


def test_the_check_finds_a_foreign_word(demo: DemoPanel) -> None:
    """The check itself: an English word on a Chinese page, Chinese on an English one, a raw key."""
    assert strings_outside(["已确认 by admin"], "zh-CN", demo.names) == [("已确认 by admin", "by")]
    assert strings_outside(["Acknowledged by admin"], "en", demo.names) == []
    assert strings_outside(["Acknowledged 已确认"], "en", demo.names) == [("Acknowledged 已确认", "已确认")]
    assert strings_outside(["pipe_state 170"], "zh-CN", demo.names) == [("pipe_state 170", "pipe_state")]
    assert strings_outside(["阳光花园 2026-11-27 15:30:02 0.32 MPa"], "zh-CN", demo.names) == []
