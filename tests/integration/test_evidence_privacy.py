"""Evidence privacy end to end: camera simulator (RTSP) -> gateway (vision, store, alarms, uplink) -> platform.

The camera serves the ``lane_a7_park`` story, composed from the shared media's ``a7`` photo (a
doorbell view of an estate street with a resident walking on the pavement, MIT): a car parks in
the fire lane, played 20 times faster (``time_scale`` 0.05, dwell and timings scaled alike). The
gateway is the real in-process daemon with the real SQLite store and uplink, and the platform is
the real simulator over HTTPS. What is checked is what each side holds:

- estate defaults: the picture the platform received (by its id, the SHA-256 of the uploaded
  bytes) has the resident blurred, while the box's own copy, the one the panel shows, does not;
  the two copies are both on disk and the platform's bytes are exactly the uploaded file;
- the estate's switch off (``privacy.blur_people_upload: false``): one copy, uploaded unblurred;
- a camera cannot weaken the estate's policy: the config check refuses it, naming the setting.

Sharpness is the variance of the Laplacian over the middle of the resident (the a7 photo has her
at about 583-699 x 457-747); the stream is H.264, so both copies are compared with each other and
with the untouched background, never with the photo.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from edge.app import Gateway
from edge.config import load_config
from edge.errors import ConfigError
from simulators.camera.sim import CameraSimulator, SimCameraSpec
from tests.helpers.config import write_estate
from tests.helpers.platform import PlatformSim, free_port

SCALE = 0.05
PERSON_INNER = (605, 500, 680, 720)  # x1, y1, x2, y2 inside the resident, clear of boxes and caption
BACKGROUND = (60, 200, 520, 420)  # houses left of her: no box, no zone, no caption


def sharpness(image: NDArray[np.uint8], box: tuple[int, int, int, int]) -> float:
    x1, y1, x2, y2 = box
    return float(cv2.Laplacian(cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def decode(jpeg: bytes) -> NDArray[np.uint8]:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a JPEG"
    return image


def camera_entry(sim: CameraSimulator, **extra: Any) -> dict[str, Any]:
    cam = sim.cameras["lane1"]
    return {
        "id": "lane1", "name": "3栋北侧消防通道", "location": {"building": "3"}, "host": "127.0.0.1",
        "port": cam.service.port, "username": "admin", "password": "pw", "fps": 5,
        "zones": [z.as_config() for z in cam.scenario.zones],
        "analytics": {"dwell_s": 120 * SCALE, "hold_s": 60 * SCALE, "min_presence_s": 10 * SCALE,
                      "exit_grace_s": 5 * SCALE, "track_max_gap_s": 1.0},
        "gating": {"heartbeat_s": 0.5, "settle_s": 0.5}, "health": {"interval_s": 1.0},
        **extra,
    }


async def until(condition: Callable[[], Awaitable[Any]], timeout: float, task: asyncio.Task[Any]) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            if task.done():
                task.result()
                raise AssertionError("the gateway stopped")
            result = await condition()
            if result:
                return result
            await asyncio.sleep(0.1)


async def blocked_evidence(tmp_path: Path, platform_sim: PlatformSim, policy: dict[str, Any] | None
                           ) -> tuple[dict[str, Any], bytes, Path]:
    """Run the gateway until the platform has the lane alarm's picture: (its record, the bytes, evidence dir)."""
    spec = SimCameraSpec("lane1", "lane_a7_park", time_scale=SCALE, fps=10)
    async with CameraSimulator([spec], rtsp_port=free_port(), username="admin", password="pw") as sim:
        extra: dict[str, Any] = {"cameras": [camera_entry(sim)]}
        if policy is not None:
            extra["privacy"] = policy
        config, secrets = write_estate(tmp_path, platform_url=platform_sim.url, ca=platform_sim.ca, extra=extra)
        gateway = Gateway(config, secrets)
        task = asyncio.create_task(gateway.run(install_signals=False))

        async def uploaded() -> dict[str, Any] | None:
            records = await asyncio.to_thread(platform_sim.records, "alarm")
            return next((r for r in records if r.get("code") == "fire.lane_blocked" and r.get("evidence")), None)

        try:
            record = await until(uploaded, 60, task)
        finally:
            gateway.request_stop()
            await asyncio.wait_for(task, 30)
    with platform_sim.http() as client:
        response = client.get(f"/_sim/records/{record['id']}/evidence")
    assert response.status_code == 200, response.text
    return record, response.content, tmp_path / "evidence"


@pytest.mark.slow
async def test_platform_gets_people_blurred_while_the_panel_copy_is_not(
    tmp_path: Path, platform_sim: PlatformSim
) -> None:
    record, received, evidence_dir = await blocked_evidence(tmp_path, platform_sim, None)
    # The id is the SHA-256 of exactly the bytes the platform holds, and those are the uploaded copy.
    assert record["evidence"]["id"] == "sha256-" + hashlib.sha256(received).hexdigest()
    uploaded = (evidence_dir / f"{record['id']}.jpg").read_bytes()
    local = (evidence_dir / f"{record['id']}.local.jpg").read_bytes()
    assert received == uploaded and local != uploaded
    # The panel shows what the store's rows name: the local copy, for the alarm step and the alarm.
    with sqlite3.connect(f"file:{tmp_path / 'edge.db'}?mode=ro", uri=True) as db:
        step = db.execute("SELECT alarm_id, evidence_path FROM alarm_log WHERE id=?", (record["id"],)).fetchone()
        alarm = db.execute("SELECT evidence_path FROM alarms WHERE alarm_id=?", (step[0],)).fetchone()
    assert step[1] == alarm[0] == f"{record['id']}.local.jpg"
    remote, kept = decode(received), decode(local)
    # The resident: blurred on the platform, as sharp as the street around her on the box.
    assert sharpness(remote, PERSON_INNER) < 0.1 * sharpness(kept, PERSON_INNER)
    assert sharpness(kept, PERSON_INNER) > 0.3 * sharpness(kept, BACKGROUND)
    # Everything else is the same picture (JPEG noise aside), caption in the estate's time zone included.
    x1, y1, x2, y2 = BACKGROUND
    assert float(np.abs(remote[y1:y2, x1:x2].astype(np.int16) - kept[y1:y2, x1:x2]).mean()) < 1.0
    assert float(np.abs(remote[:24, :700].astype(np.int16) - kept[:24, :700]).mean()) < 2.0
    # The event that opened the alarm references the same uploaded picture.
    events = [r for r in platform_sim.records("event") if r.get("code") == "fire.lane_blocked"]
    assert events and events[0]["evidence"]["id"] == record["evidence"]["id"]


@pytest.mark.slow
async def test_estate_switch_off_uploads_unblurred(tmp_path: Path, platform_sim: PlatformSim) -> None:
    record, received, evidence_dir = await blocked_evidence(tmp_path, platform_sim, {"blur_people_upload": False})
    assert not (evidence_dir / f"{record['id']}.local.jpg").exists()  # one copy: both sides see the same
    assert received == (evidence_dir / f"{record['id']}.jpg").read_bytes()
    image = decode(received)
    assert sharpness(image, PERSON_INNER) > 0.3 * sharpness(image, BACKGROUND)


def test_a_camera_cannot_weaken_the_estates_policy(tmp_path: Path) -> None:
    camera = {"id": "lane1", "name": "lane", "location": {"building": "3"}, "host": "127.0.0.1",
              "privacy": {"blur_people_upload": False}}
    config, secrets = write_estate(tmp_path, platform_url="https://127.0.0.1:9", ca=None,
                                   extra={"platform": {"enabled": False}, "cameras": [camera]})
    with pytest.raises(ConfigError) as caught:
        load_config(config, secrets)
    assert any("cameras[0].privacy.blur_people_upload: false would weaken" in p for p in caught.value.problems)
    # Where the estate has agreed to send identifiable images, the same camera is fine.
    config, secrets = write_estate(tmp_path, platform_url="https://127.0.0.1:9", ca=None,
                                   extra={"platform": {"enabled": False}, "cameras": [camera],
                                          "privacy": {"blur_people_upload": False}})
    assert load_config(config, secrets).cameras[0].privacy.blur_people_upload is False
