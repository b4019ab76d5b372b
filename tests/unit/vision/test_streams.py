"""Choosing the analysed ONVIF profile, and zones drawn on the main stream scaled to a sub-stream."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pytest

from edge.config.cameras import CameraConfig
from edge.vision.detector import Detector
from edge.vision.pipeline import CameraPipeline
from edge.vision.streams import choose_profile
from tests.unit.vision.helpers import square_zone


@dataclass(frozen=True)
class Profile:
    token: str
    width: int | None
    height: int | None


MAIN = Profile("main", 1280, 720)
SUB = Profile("sub", 640, 360)
TINY = Profile("tiny", 320, 180)


def test_the_smallest_profile_that_fills_the_model_is_chosen() -> None:
    assert choose_profile([MAIN, SUB, TINY], 416, 416) is SUB  # 640 x 360 -> 416 x 234: no upscaling
    assert choose_profile([MAIN, TINY], 416, 416) is MAIN  # 320 px would be upscaled
    assert choose_profile([TINY], 416, 416) is TINY  # nothing fills it: the largest there is
    assert choose_profile([Profile("x", None, None), SUB], 416, 416) is SUB
    assert choose_profile([Profile("x", None, None)], 416, 416).token == "x"
    with pytest.raises(ValueError, match="no media profiles"):
        choose_profile([], 416, 416)


def test_a_zone_crop_needs_the_pixels_of_a_bigger_stream() -> None:
    """roi.mode zones over a third of the picture: 640 x 360 gives a 213 px crop, too small for 416."""
    assert choose_profile([MAIN, SUB], 416, 416, crop=(1 / 3, 1 / 3)) is MAIN
    assert choose_profile([Profile("4k", 3840, 2160), MAIN, SUB], 416, 416, crop=(1 / 3, 1 / 3)) is MAIN
    assert choose_profile([Profile("4k", 3840, 2160), MAIN, SUB], 416, 416, crop=(1 / 4, 1 / 4)).token == "4k"


def test_zone_scaled_keeps_shape_and_entry_side() -> None:
    zone = square_zone("ebike_entry", ((100, 0), (100, 100)))
    half = zone.scaled(0.5, 0.5)
    np.testing.assert_allclose(half.polygon.max(axis=0), [50, 50])
    assert half.entry_line is not None and half.entry_line.b == (50.0, 50.0)
    assert half.entry_line.crossed_inward((60, 25), (40, 25))  # inward is still towards the zone


def test_pipeline_scales_zones_to_the_analysed_frame(detector: Detector) -> None:
    cam = CameraConfig.model_validate({
        "id": "c", "name": "c", "location": {"building": "1"}, "onvif": False,
        "stream": {"rtsp_uri": "rtsp://127.0.0.1/x"}, "zones_size": [1280, 720],
        "zones": [{"id": "lane", "kind": "fire_lane", "polygon": [[640, 360], [1280, 360], [1280, 720]]}],
    })
    pipeline = CameraPipeline(cam, detector)
    pipeline.process(np.zeros((360, 640, 3), np.uint8), 0.0, datetime(2025, 1, 1, tzinfo=UTC))
    np.testing.assert_allclose(pipeline.zones[0].polygon, [[320, 180], [640, 180], [640, 360]])
    assert pipeline.fire_lanes[0].zone is pipeline.zones[0] and pipeline.gate is not None
    pipeline.process(np.zeros((720, 1280, 3), np.uint8), 1.0, datetime(2025, 1, 1, tzinfo=UTC))
    np.testing.assert_allclose(pipeline.zones[0].polygon, [[640, 360], [1280, 360], [1280, 720]])
