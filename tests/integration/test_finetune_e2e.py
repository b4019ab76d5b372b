"""The site-model loop end to end, on composites built from the shared media (``tests/unit/training/scenes``).

collect (the real vision pipeline with the real YOLOX-Nano and the collector attached) -> label
(through the panel's API, as the labelling page does, logged in as the installer) -> train (the
``estate-edge train`` command in its own process, a few steps at 320 px) -> validate and activate
(panel API: both scores, config rewritten, daemon reload asked) -> the activated model runs in the
gateway's own Detector and finds the e-bike the shipped model missed -> one-click rollback.
Nothing is mocked; the daemon's reload is the panel test hook that records the call.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import yaml

from edge.clock import ManualClock
from edge.config import load_config
from edge.panel import PanelHooks, create_app
from edge.panel.roles import Role
from edge.store import Store
from edge.training.collect import FrameCollector
from edge.vision.detector import shared_detector
from edge.vision.pipeline import CameraPipeline
from models.registry import ModelRegistry
from tests.helpers.panel import PASSWORD, cheap_passwords, csrf_from, panel_settings, write_panel_estate
from tests.unit.training.scenes import ebike_scenes

pytest.importorskip("jax", reason="the training extra (estate-edge[train]) is not installed")

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
CAMERA = {
    "id": "cam-lane", "name": "3栋北侧消防通道", "location": {"building": "3栋"}, "host": "127.0.0.1",
    "gating": {"enabled": False},
    "zones": [{"id": "lane", "kind": "fire_lane", "name": "北侧通道", "dwell_s": 90,
               "polygon": [[0, 120], [583, 120], [583, 374], [0, 374]]}],
}


def _estate(tmp: Path) -> tuple[Path, Path]:
    config_path, secrets_path = write_panel_estate(tmp, cameras=[CAMERA])
    training = {"training": {"dir": str(tmp / "training"), "min_interval_s": 0, "input_size": 320,
                             "batch_size": 4, "epochs": 8, "holdout_fraction": 0.3, "min_holdout_frames": 2,
                             "frozen_convs": 40, "checkpoint_every_s": 5, "nice": 0, "pause_busy_fraction": 1.0}}
    with config_path.open("a", encoding="utf-8") as fh:
        fh.write(yaml.safe_dump(training, sort_keys=False))
    return config_path, secrets_path


async def _login(client: httpx.AsyncClient) -> str:
    page = await client.get("/login")
    response = await client.post("/login", data={"username": "installer", "password": PASSWORD,
                                                 "csrf_token": csrf_from(page.text)})
    assert response.status_code == 303, response.text[:300]
    return str((await client.get("/api/v1/me")).json()["csrf_token"])


@pytest.fixture
async def panel(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    config_path, secrets_path = _estate(tmp_path)
    reloads: list[int] = []

    async def reload() -> dict[str, list[str]]:
        reloads.append(1)
        return {"restarted": ["camera:cam-lane"]}

    clock = ManualClock(T0)
    async with Store(tmp_path / "edge.db", evidence_dir=tmp_path / "evidence", maintenance_interval_s=0,
                     batch_max_delay_ms=1, clock=clock) as store:
        app = create_app(store, config_path, secrets_path, clock=clock, hooks=PanelHooks(reload=reload),
                         settings=panel_settings(), passwords=cheap_passwords(), backlog_ttl_s=0)
        async with (app.router.lifespan_context(app),
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://panel.test") as c):
            await app.state.panel.users.create("installer", PASSWORD, Role.ADMIN)
            yield {"client": c, "config": config_path, "secrets": secrets_path, "reloads": reloads,
                   "csrf": await _login(c)}


async def test_collect_label_train_validate_activate_rollback(panel: dict[str, Any], shared_dir: Path,
                                                              tmp_path: Path) -> None:
    client: httpx.AsyncClient = panel["client"]
    headers = {"X-CSRF-Token": panel["csrf"]}
    config = load_config(panel["config"], panel["secrets"])
    camera = config.cameras[0]
    scenes = ebike_scenes(shared_dir, 12)

    # --- collect: the real pipeline with the collector attached keeps every frame with the car in the lane
    detector = shared_detector(ModelRegistry(), "yolox_nano")
    pipeline = CameraPipeline(camera, detector)
    pipeline.collector = FrameCollector.from_config(config.training, config.store.path)
    for i, scene in enumerate(scenes):
        image = cv2.imdecode(np.frombuffer(scene.jpeg, np.uint8), cv2.IMREAD_COLOR)
        pipeline.process(image, float(i), T0 + timedelta(seconds=i))
    listed = (await client.get("/api/labels/frames", params={"camera": "cam-lane", "state": "unlabelled"})).json()
    assert listed["total"] == len(scenes), listed
    frames = sorted(listed["frames"], key=lambda f: f["ts"])
    # the parked car occupies the lane; the far car at about 0.39 is "near the threshold" (0.30 + 0.15)
    assert all(f["reason"] in ("zone_occupied", "near_threshold") and f["model"] == "yolox_nano" for f in frames)
    assert all(any(p["label"] == "car" for p in f["proposals"]) for f in frames), "car proposals pre-filled"
    assert not any(p["label"] == "ebike" for f in frames for p in f["proposals"]), "COCO model saw no e-bike"
    splits = {f["split"] for f in frames}
    assert splits == {"train", "holdout"}, splits
    page = await client.get("/labels", params={"camera": "cam-lane"})
    assert page.status_code == 200 and "电动车" in page.text and "婴儿车" in page.text

    # --- label through the panel API (a bad box is refused with its place named, nothing saved)
    bad = await client.put(f"/api/labels/frames/cam-lane/{frames[0]['frame_id']}", headers=headers,
                           json={"boxes": [{"x1": 1, "y1": 1, "x2": 50, "y2": 50, "label": "unicorn"}]})
    assert bad.status_code == 422 and "box 0" in bad.text and "unicorn" in bad.text
    for frame, scene in zip(frames, scenes, strict=True):
        saved = await client.put(f"/api/labels/frames/cam-lane/{frame['frame_id']}", headers=headers,
                                 json={"boxes": scene.boxes})
        assert saved.status_code == 200, saved.text
        assert saved.json()["labelled"] and saved.json()["labelled_by"] == "installer"
    assert (await client.get("/api/labels/frames", params={"state": "unlabelled"})).json()["total"] == 0

    # --- train: the real command, in its own process, resumable runs under the training folder
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "edge.cli", "train", str(panel["config"]), "--new"],
                          capture_output=True, text=True, timeout=240, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "finished, step 16 of 16" in done.stdout, done.stdout
    models = (await client.get("/api/labels/models")).json()
    assert len(models["models"]) == 1
    new_card = models["models"][0]["name"]
    assert models["cameras"][0]["card"] == "yolox_nano" and not models["cameras"][0]["can_rollback"]

    # --- validate: both scores on the camera's hold-out split, for the classes its lane watches
    evaluated = await client.post("/api/labels/models/cam-lane/evaluate", headers=headers, json={"card": new_card})
    assert evaluated.status_code == 200, evaluated.text
    comparison = evaluated.json()["comparison"]
    assert comparison["better"] is True
    assert "car" in comparison["classes"] and "ebike" in comparison["classes"]
    assert comparison["candidate"]["score"] > comparison["current"]["score"]
    assert comparison["current"]["classes"]["ebike"]["ap50"] == 0.0
    assert comparison["candidate"]["classes"]["ebike"]["ap50"] > 0.0
    assert comparison["candidate"]["classes"]["car"]["ap50"] >= 0.5, "the car is not forgotten"

    # --- activate: config rewritten (validated, backed up), daemon reload asked
    activated = await client.post("/api/labels/models/cam-lane/activate", headers=headers, json={"card": new_card})
    assert activated.status_code == 200, activated.text
    assert activated.json()["comparison"]["better"] is True
    assert panel["reloads"] == [1]
    switched = load_config(panel["config"], panel["secrets"]).cameras[0]
    assert switched.model.card == new_card and switched.model.dir == str(tmp_path / "training" / "models")
    assert "# estate config written by the panel tests" in panel["config"].read_text(encoding="utf-8")
    shown = (await client.get("/api/labels/models")).json()["cameras"][0]
    assert shown["card"] == new_card and shown["can_rollback"]
    assert shown["comparisons"][0]["current"]["score"] is not None

    # the activated model, verified by its card's SHA-256, runs in the gateway's own Detector, found the
    # way the camera source looks it up (edge/vision/camera.py: the card beside the weights in the camera's model.dir)
    model_dir = Path(switched.model.dir) if switched.model.dir else None
    site_detector = shared_detector(ModelRegistry().with_cards_in(model_dir), switched.model.card,
                                    models_dir=Path(switched.model.dir or ""))
    assert site_detector.card.sha256 == models["models"][0]["sha256"]
    holdout = [s for s, f in zip(scenes, frames, strict=True) if f["split"] == "holdout"]
    found = 0
    for scene in holdout:
        image = cv2.imdecode(np.frombuffer(scene.jpeg, np.uint8), cv2.IMREAD_COLOR)
        detections, _ = site_detector.detect(image)
        found += int(any(detections.labels[int(c)] == "ebike" for c in detections.class_ids))
    assert found >= 1, "the fine-tuned model finds the hold-out e-bikes the shipped model missed"

    # --- one click back
    back = await client.post("/api/labels/models/cam-lane/rollback", headers=headers)
    assert back.status_code == 200 and back.json()["card"] == "yolox_nano"
    restored = load_config(panel["config"], panel["secrets"]).cameras[0]
    assert restored.model.card == "yolox_nano" and restored.model.dir is None
    assert panel["reloads"] == [1, 1]
    again = await client.post("/api/labels/models/cam-lane/rollback", headers=headers)
    assert again.status_code == 409
