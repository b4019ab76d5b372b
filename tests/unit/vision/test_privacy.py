"""Evidence privacy: the person in a real frame is blurred in the evidence JPEG, the rest is not.

The frame is ``a7`` of the shared media (a doorbell view of an estate street: a resident at
583-699 x 457-747 and a car beside her), run through the real pipeline and model with a 1 s dwell
so the car raises ``fire.lane_blocked`` and its evidence (the JPEG the store keeps and the uplink
sends) is rendered. Sharpness is measured as the variance of the Laplacian.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from edge.cameras import build_camera_sources
from edge.config import EstateConfig
from edge.config.cameras import CameraConfig
from edge.errors import ConfigError
from edge.vision.detector import Detector
from edge.vision.evidence import caption_time
from edge.vision.pipeline import CameraPipeline

PERSON_INNER = (600, 480, 685, 735)  # x1, y1, x2, y2 inside the detected person box, clear of drawings
BACKGROUND = (60, 200, 520, 420)  # houses and road left of her: no box, no zone, no caption
TS = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


def camera(**extra: Any) -> CameraConfig:
    return CameraConfig.model_validate({
        "id": "lane1", "name": "lane", "location": {"building": "1"}, "onvif": False,
        "stream": {"rtsp_uri": "rtsp://127.0.0.1/x"}, "gating": {"enabled": False},
        "zones": [{"id": "lane", "kind": "fire_lane", "name": "北侧消防通道",
                   "polygon": [[700, 440], [1000, 440], [1000, 560], [700, 560]]}],
        "analytics": {"dwell_s": 1, "min_presence_s": 0}, **extra,
    })


def evidence(detector: Detector, frame: NDArray[np.uint8], cam: CameraConfig) -> tuple[NDArray[np.uint8], Any]:
    pipeline = CameraPipeline(cam, detector, tz=ZoneInfo("Asia/Shanghai"))
    for t in range(4):
        result = pipeline.process(frame, float(t), TS)
        if result.evidence:
            image = cv2.imdecode(np.frombuffer(result.evidence[0], np.uint8), cv2.IMREAD_COLOR)
            return image, result
    raise AssertionError("the parked car never raised fire.lane_blocked")


def sharpness(image: NDArray[np.uint8], box: tuple[int, int, int, int]) -> float:
    x1, y1, x2, y2 = box
    grey = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


@pytest.fixture(scope="module")
def frame(shared_dir: Path) -> NDArray[np.uint8]:
    image = cv2.imread(str(shared_dir / "media" / "a7_frigate_ground-plane.jpg"))
    assert image is not None
    return image


def test_people_are_blurred_in_uploaded_evidence_and_nothing_else(detector: Detector, frame: NDArray[np.uint8]) -> None:
    blurred, result = evidence(detector, frame, camera())
    plain, _ = evidence(detector, frame, camera(privacy={"blur_people_upload": False}))
    assert [b.label for b in result.people] == ["person"]
    assert result.decisions[0].box is not None and result.decisions[0].box.label == "car"
    # The person: sharp in the frame and in unblurred evidence, blurred in the default evidence.
    original = sharpness(frame, PERSON_INNER)
    assert sharpness(plain, PERSON_INNER) > 0.5 * original
    assert sharpness(blurred, PERSON_INNER) < 0.05 * original
    # The rest of the picture is untouched (JPEG noise aside).
    x1, y1, x2, y2 = BACKGROUND
    diff = np.abs(blurred[y1:y2, x1:x2].astype(np.int16) - plain[y1:y2, x1:x2].astype(np.int16))
    assert float(diff.mean()) < 1.0
    assert sharpness(blurred, BACKGROUND) == pytest.approx(sharpness(plain, BACKGROUND), rel=0.05)


def test_people_outside_a_cropped_roi_are_found_for_the_evidence(detector: Detector, frame: NDArray[np.uint8]) -> None:
    """With roi.mode zones the model sees only the lane; the evidence shows the whole frame."""
    blurred, _ = evidence(detector, frame, camera(roi={"mode": "zones", "margin": 0.0}))
    assert sharpness(blurred, PERSON_INNER) < 0.05 * sharpness(frame, PERSON_INNER)


def test_local_setting_alone_also_blurs(detector: Detector, frame: NDArray[np.uint8]) -> None:
    blurred, _ = evidence(detector, frame, camera(privacy={"blur_people_upload": False, "blur_people_local": True}))
    assert sharpness(blurred, PERSON_INNER) < 0.05 * sharpness(frame, PERSON_INNER)


def test_unknown_person_class_is_a_config_error(detector: Detector) -> None:
    with pytest.raises(ConfigError, match=r"privacy.person_classes: class 'pedestrian'"):
        CameraPipeline(camera(privacy={"person_classes": ["pedestrian"]}), detector)


def test_caption_is_in_the_estate_time_zone() -> None:
    assert caption_time(TS, ZoneInfo("Asia/Shanghai")) == "2025-06-01 16:00:00 UTC+08:00"
    assert caption_time(TS, UTC) == "2025-06-01 08:00:00 UTC+00:00"


def test_camera_sources_caption_in_the_estates_time_zone() -> None:
    config = EstateConfig.model_validate({
        "estate": {"id": "e1", "name": "E", "gateway_id": "g1", "timezone": "Asia/Urumqi"},
        "platform": {"url": "https://platform.example", "client_id": "c"},
        "cameras": [camera().model_dump(mode="json")],
    })
    [source] = build_camera_sources(config)
    assert source.analyser._tz == ZoneInfo("Asia/Urumqi")
