"""Browser tests: Debian's Chromium, headless, driven by Playwright (python), against a real panel server.

One browser for the session, one fresh context (cookies, storage) per test, one panel server per
module. Every test saves a screenshot of its page to ``tests/artifacts/`` (git-ignored), and the
``page`` fixture saves one more if a test fails, so a CI failure shows what the browser saw.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from edge.panel import CameraFrame, FrameDetection, PanelHooks
from edge.panel.cameras import jpeg_size
from edge.panel.roles import Role
from tests.helpers.panel import PanelServer, alarm

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Iterator[PanelServer]:
    jpeg = (shared_dir / "media" / "a7_frigate_ground-plane.jpg").read_bytes()
    size = jpeg_size(jpeg)
    assert size is not None
    reloads: list[float] = []

    async def snapshot(camera_id: str) -> CameraFrame | None:
        return CameraFrame(jpeg, size[0], size[1], int(time.time() * 1e6),
                           (FrameDetection("car", 0.88, 430, 340, 560, 400),))

    async def reload() -> dict[str, list[str]]:
        reloads.append(time.time())
        return {"restarted": ["camera:cam-1"]}

    with PanelServer(tmp_path_factory.mktemp("browser"), hooks=PanelHooks(snapshot=snapshot, reload=reload)) as s:
        for role in Role:
            s.add_user(f"{role.value}1", role)
        s.call(s.store.append_alarm_records([alarm("ALARM-HYD-1", message="1栋消火栓压力低")]))  # type: ignore[union-attr]
        s.reloads = reloads  # type: ignore[attr-defined]
        yield s


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        shot(page, f"{request.node.name}-FAILED")
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
