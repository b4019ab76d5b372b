"""Camera config validation: zones, reachability, and clear messages."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from edge.config.cameras import CameraConfig


def cam(**extra: Any) -> dict[str, Any]:
    return {"id": "lane1", "name": "Lane", "location": {"building": "3"}, "host": "10.0.0.5", **extra}


def test_defaults_are_the_issue_defaults() -> None:
    c = CameraConfig.model_validate(cam(zones=[{"id": "lane", "kind": "fire_lane",
                                                 "polygon": [[0, 0], [100, 0], [100, 50]]}]))
    assert c.analytics.dwell_s == 120 and c.gating.enabled and c.model.card == "yolox_nano"
    assert c.model.providers == ["CPUExecutionProvider"] and c.stream.mode == "rtsp"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"zones": [{"id": "l", "kind": "fire_lane", "polygon": [[0, 0], [9, 0], [9, 9]],
                     "entry_line": [[0, 0], [9, 9]]}]}, "entry_line is only meaningful for ebike_entry"),
        ({"zones": [{"id": "d", "kind": "ebike_entry", "polygon": [[0, 0], [9, 0], [9, 9]], "dwell_s": 5}]},
         "dwell_s is only meaningful for fire_lane"),
        ({"zones": [{"id": "l", "kind": "fire_lane", "polygon": [[0, 0], [9, 0]]}]}, "at least 3"),
        ({"zones": [{"id": "l", "kind": "fire_lane", "polygon": [[0, 0], [1, 0], [1, 0.5]]}]}, "degenerate"),
        ({"zones": [{"id": "l", "kind": "fire_lane", "polygon": [[0, 0], [9, 0], [9, 9]]},
                    {"id": "l", "kind": "fire_lane", "polygon": [[0, 0], [9, 0], [9, 9]]}]}, "used more than once"),
        ({"host": None}, "give host"),
        ({"onvif": False}, "stream.rtsp_uri is required when onvif is false"),
        ({"stream": {"rtsp_uri": "http://x/y"}}, "rtsp_uri must start with rtsp://"),
        ({"zones": [{"id": "l", "kind": "parking", "polygon": [[0, 0], [9, 0], [9, 9]]}]}, "fire_lane"),
        ({"fps": 0}, "greater than 0"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_camera_config_is_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CameraConfig.model_validate(cam(**extra))


def test_discovery_or_uri_instead_of_host() -> None:
    assert CameraConfig.model_validate(cam(host=None, discovery={"endpoint": "urn:uuid:1"})).discovery is not None
    c = CameraConfig.model_validate(cam(host=None, onvif=False, stream={"mode": "snapshot",
                                                                         "snapshot_uri": "https://cam/snap.jpg"}))
    assert c.stream.snapshot_uri == "https://cam/snap.jpg"
