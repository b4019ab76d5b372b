"""The labelling page in a real headless Chromium: keyboard and mouse only, saved through the panel API.

Pre-filled proposal -> "5" makes it a truck/van -> a dragged box -> "1" makes it an e-bike -> "S" saves
and moves to the next frame; the frame's sidecar on disk then holds exactly those two boxes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from edge.panel.roles import Role
from edge.training.frames import FrameStore, LabelBox
from tests.helpers.panel import PASSWORD, PanelServer
from tests.unit.training.scenes import ebike_scenes

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
T0 = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        yield browser
        browser.close()


def test_label_a_frame_with_keys_and_a_drag(browser: Browser, tmp_path: Path, shared_dir: Path) -> None:
    scenes = ebike_scenes(shared_dir, 2)
    with PanelServer(tmp_path) as server:
        server.add_user("installer", Role.ADMIN)
        store = FrameStore(tmp_path / "training", 10 << 20)
        first = store.add("cam-1", scenes[0].jpeg, reason="near_threshold", width=584, height=375, ts=T0,
                          proposals=[LabelBox(350.0, 205.0, 460.0, 255.0, "car", 0.41)], model="yolox_nano")
        store.add("cam-1", scenes[1].jpeg, reason="zone_occupied", width=584, height=375, ts=T0 + timedelta(seconds=1))
        assert first is not None
        context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
        page: Page = context.new_page()
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/login")
        page.fill("#username", "installer")
        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        page.goto(server.url + "/labels?camera=cam-1")
        page.select_option("#label-camera", "cam-1")
        # The select's change reloads the list: let that finish, or it resets the position after the key below.
        page.wait_for_load_state("networkidle")
        expect(page.locator("#label-position")).to_have_text("1 / 2")  # newest first
        page.keyboard.press("ArrowRight")
        expect(page.locator("#label-position")).to_have_text("2 / 2")
        expect(page.locator("#label-boxes li")).to_have_count(1)
        expect(page.locator("#label-boxes li")).to_contain_text("模型预标注")
        page.keyboard.press("5")
        expect(page.locator("#label-boxes li")).to_have_text("▶ 货车/面包车")
        canvas = page.locator("#label-canvas").bounding_box()
        assert canvas is not None
        sx, sy = canvas["width"] / 584, canvas["height"] / 375
        page.mouse.move(canvas["x"] + 60 * sx, canvas["y"] + 200 * sy)
        page.mouse.down()
        page.mouse.move(canvas["x"] + 100 * sx, canvas["y"] + 240 * sy, steps=4)
        page.mouse.move(canvas["x"] + 140 * sx, canvas["y"] + 300 * sy, steps=4)
        page.mouse.up()
        expect(page.locator("#label-boxes li")).to_have_count(2)
        page.keyboard.press("1")
        expect(page.locator("#label-boxes li").nth(1)).to_have_text("▶ 电动车")
        page.keyboard.press("s")
        expect(page.locator("#label-position")).to_have_text("1 / 1")  # saved, left the unlabelled list
        saved = store.get("cam-1", first.frame_id)
        assert saved.labelled and saved.labelled_by == "installer"
        assert [b.label for b in (saved.boxes or [])] == ["truck_van", "ebike"]
        drawn = (saved.boxes or [])[1]
        assert drawn.x1 == pytest.approx(60, abs=3) and drawn.y2 == pytest.approx(300, abs=3)
        assert errors == []
        context.close()
