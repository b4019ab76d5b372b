"""Evidence privacy: the person in a real frame is blurred in the evidence JPEG, the rest is not.

The frame is ``a7`` of the shared media (a doorbell view of an estate street: a resident at
583-699 x 457-747 and a car beside her), run through the real pipeline and model with a 1 s dwell
so the car raises ``fire.lane_blocked`` and its evidence (the uploaded copy and, where the policy
differs, the panel's copy) is rendered. Sharpness is measured as the variance of the Laplacian.
The path through the store and the uplink to the platform is tested in
``tests/integration/test_evidence_privacy.py``.
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
from edge.config.privacy import EvidenceBlur, PrivacyPolicy
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


def decode(jpeg: bytes) -> NDArray[np.uint8]:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def evidence(detector: Detector, frame: NDArray[np.uint8], cam: CameraConfig,
             blur: EvidenceBlur | None = None) -> tuple[NDArray[np.uint8], Any]:
    """The uploaded copy of the first evidence picture, decoded, and the frame's result."""
    pipeline = CameraPipeline(cam, detector, tz=ZoneInfo("Asia/Shanghai"), blur=blur)
    for t in range(4):
        result = pipeline.process(frame, float(t), TS)
        if result.evidence:
            return decode(result.evidence[0].upload), result
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
    plain, _ = evidence(detector, frame, camera(), blur=EvidenceBlur(upload=False, local=False))
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


def test_default_policy_renders_a_blurred_upload_and_a_plain_local_copy(
    detector: Detector, frame: NDArray[np.uint8]
) -> None:
    """Estate defaults: the platform's copy blurred, the panel's copy not; captions alike (estate time)."""
    _, result = evidence(detector, frame, camera())
    [images] = result.evidence
    assert images.local is not None and images.local != images.upload
    original = sharpness(frame, PERSON_INNER)
    assert sharpness(decode(images.upload), PERSON_INNER) < 0.05 * original
    assert sharpness(decode(images.local), PERSON_INNER) > 0.5 * original
    caption = (0, 0, 700, 24)  # the caption band: "lane1 fire.lane_blocked 北侧消防通道  2025-06-01 16:00:00 UTC+08:00"
    x1, y1, x2, y2 = caption
    diff = np.abs(decode(images.upload)[y1:y2, x1:x2].astype(np.int16) - decode(images.local)[y1:y2, x1:x2])
    assert float(diff.mean()) < 2.0


def test_one_copy_when_upload_and_local_agree(detector: Detector, frame: NDArray[np.uint8]) -> None:
    for policy, person_blurred in ((EvidenceBlur(upload=True, local=True), True),
                                   (EvidenceBlur(upload=False, local=False), False)):
        image, result = evidence(detector, frame, camera(), blur=policy)
        assert result.evidence[0].local is None
        blurred = sharpness(image, PERSON_INNER) < 0.05 * sharpness(frame, PERSON_INNER)
        assert blurred is person_blurred


def test_local_blur_alone_blurs_the_panel_copy_only(detector: Detector, frame: NDArray[np.uint8]) -> None:
    """An estate that sends identifiable images but keeps faces off the panel (both settings are its own)."""
    _, result = evidence(detector, frame, camera(), blur=EvidenceBlur(upload=False, local=True))
    [images] = result.evidence
    assert images.local is not None
    original = sharpness(frame, PERSON_INNER)
    assert sharpness(decode(images.local), PERSON_INNER) < 0.05 * original
    assert sharpness(decode(images.upload), PERSON_INNER) > 0.5 * original


def test_camera_may_only_add_blurring() -> None:
    estate_off = PrivacyPolicy(blur_people_upload=False)
    assert estate_off.for_camera("cameras[0]", True, None) == EvidenceBlur(upload=True, local=False)
    assert estate_off.for_camera("cameras[0]", False, None) == EvidenceBlur(upload=False, local=False)
    assert PrivacyPolicy().for_camera("cameras[0]", None, True) == EvidenceBlur(upload=True, local=True)
    with pytest.raises(ValueError, match=r"cameras\[0\]\.privacy\.blur_people_upload: false would weaken"):
        PrivacyPolicy().for_camera("cameras[0]", False, None)
    with pytest.raises(ValueError, match=r"cameras\[3\]\.privacy\.blur_people_local: false would weaken"):
        PrivacyPolicy(blur_people_local=True).for_camera("cameras[3]", None, False)


def test_pipeline_refuses_a_camera_that_weakens_the_default_policy(detector: Detector) -> None:
    with pytest.raises(ConfigError, match=r"privacy\.blur_people_upload: false would weaken"):
        CameraPipeline(camera(privacy={"blur_people_upload": False}), detector)


def test_unknown_person_class_is_a_config_error(detector: Detector) -> None:
    with pytest.raises(ConfigError, match=r"privacy.person_classes: class 'pedestrian'"):
        CameraPipeline(camera(privacy={"person_classes": ["pedestrian"]}), detector)


def test_caption_is_in_the_estate_time_zone() -> None:
    assert caption_time(TS, ZoneInfo("Asia/Shanghai")) == "2025-06-01 16:00:00 UTC+08:00"
    assert caption_time(TS, UTC) == "2025-06-01 08:00:00 UTC+00:00"


def estate(policy: dict[str, Any] | None = None, **camera_extra: Any) -> EstateConfig:
    return EstateConfig.model_validate({
        "estate": {"id": "e1", "name": "E", "gateway_id": "g1", "timezone": "Asia/Urumqi"},
        "platform": {"url": "https://platform.example", "client_id": "c"},
        "cameras": [camera(**camera_extra).model_dump(mode="json", exclude_none=True)],
        **({"privacy": policy} if policy is not None else {}),
    })


def test_estate_config_refuses_a_camera_that_weakens_its_policy() -> None:
    with pytest.raises(ValueError, match=r"cameras\[0\]\.privacy\.blur_people_upload: false would weaken .*"
                                         r"\(camera lane1\)"):
        estate(None, privacy={"blur_people_upload": False})
    config = estate({"blur_people_upload": False}, privacy={"blur_people_local": True})
    assert config.evidence_blur(config.cameras[0]) == EvidenceBlur(upload=False, local=True)
    assert estate().evidence_blur(estate().cameras[0]) == EvidenceBlur(upload=True, local=False)


def test_camera_sources_caption_in_the_estates_time_zone() -> None:
    config = EstateConfig.model_validate({
        "estate": {"id": "e1", "name": "E", "gateway_id": "g1", "timezone": "Asia/Urumqi"},
        "platform": {"url": "https://platform.example", "client_id": "c"},
        "cameras": [camera().model_dump(mode="json")],
    })
    [source] = build_camera_sources(config)
    assert source.analyser._tz == ZoneInfo("Asia/Urumqi")
