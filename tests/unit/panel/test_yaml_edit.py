"""In-place YAML edits for the zone editor: only the camera's zones change, every other byte stays."""

from __future__ import annotations

import pytest
import yaml

from edge.panel.yaml_edit import YamlEditError, set_camera_field

DOC = """\
# 阳光花园 gateway config (installer's comments must survive)
estate: {id: E1, name: 阳光花园, gateway_id: G1}
platform:
  client_secret: !secret platform_client_secret   # never inline
cameras:
  # north gate
  - id: cam-1
    name: 北门
    zones:
      - id: lane
        kind: fire_lane
        polygon: [[1, 2], [30, 2], [30, 40]]   # drawn in 2024
    # a comment about the next key
    fps: 2
  - id: cam-2
    name: "南门"
    host: 10.0.0.2
devices: []
"""

ZONES = [{"id": "lane-2", "kind": "ebike_entry", "name": '门厅 "A": 入口', "polygon": [[5, 5], [50, 5], [50, 60.5]]}]


def _load(text: str) -> dict:
    return yaml.safe_load(text.replace("!secret ", ""))


def test_replaces_only_that_cameras_zones() -> None:
    out = set_camera_field(DOC, "cam-1", "zones", ZONES)
    data = _load(out)
    assert data["cameras"][0]["zones"] == ZONES
    assert data["cameras"][0]["fps"] == 2 and data["cameras"][1] == _load(DOC)["cameras"][1]
    for kept in ("# 阳光花园 gateway config", "!secret platform_client_secret   # never inline", "# north gate",
                 "# a comment about the next key", 'name: "南门"', "estate: {id: E1, name: 阳光花园, gateway_id: G1}"):
        assert kept in out
    assert "drawn in 2024" not in out
    # Lines outside the edited block are byte-identical.
    before, after = DOC.split("\n"), out.split("\n")
    assert before[:8] == after[:8] and before[-6:] == after[-6:]


def test_adds_zones_to_a_camera_without_them() -> None:
    out = set_camera_field(DOC, "cam-2", "zones", ZONES)
    data = _load(out)
    assert data["cameras"][1]["zones"] == ZONES and data["cameras"][1]["host"] == "10.0.0.2"
    assert data["devices"] == [] and data["cameras"][0]["zones"][0]["id"] == "lane"


def test_empty_zone_list_and_last_line_without_newline() -> None:
    text = "cameras:\n- id: c\n  name: x\n  host: h"
    out = set_camera_field(text, "c", "zones", [])
    assert _load(out)["cameras"][0]["zones"] == []
    assert _load(set_camera_field(out, "c", "zones", ZONES))["cameras"][0]["zones"] == ZONES


def test_block_scalar_value_is_replaced_cleanly() -> None:
    text = "cameras:\n  - id: c\n    zones: |\n      not a list\n    name: x\n"
    out = set_camera_field(text, "c", "zones", ZONES)
    assert _load(out)["cameras"][0] == {"id": "c", "zones": ZONES, "name": "x"}


@pytest.mark.parametrize(("text", "message"), [
    ("cameras:\n  - {id: c, name: x}\n", "flow style"),
    ("z: &z []\ncameras:\n  - id: c\n    zones: *z\n", "alias"),
    ("cameras: []\n", "no camera with id 'c'"),
    ("devices: []\n", "no 'cameras' list"),
    ("- 1\n- 2\n", "top level"),
    ("cameras: [\n", "not valid YAML"),
])
def test_refuses_what_it_can_not_edit_safely(text: str, message: str) -> None:
    with pytest.raises(YamlEditError, match=message):
        set_camera_field(text, "c", "zones", ZONES)
