"""Which classes a zone watches: roles from the card, bicycles per zone, hard negatives by name."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from edge.config.cameras import CameraConfig
from edge.errors import ConfigError
from edge.vision.classes import TWO_WHEELER_GROUP, VEHICLE_GROUP, class_groups, zone_classes
from models.registry import PACKAGED_CARDS_DIR, ModelCard, ModelRegistry

SQUARE = [[0, 0], [100, 0], [100, 100], [0, 100]]


def camera(*zones: dict[str, Any], **analytics: Any) -> CameraConfig:
    return CameraConfig.model_validate({
        "id": "c1", "name": "c", "location": {"building": "1"}, "host": "127.0.0.1",
        "zones": list(zones), "analytics": analytics,
    })


def names(card: ModelCard, ids: frozenset[int] | tuple[int, ...]) -> set[str]:
    return {card.classes[i] for i in ids}


def site_card() -> ModelCard:
    """A site-trained model with the classes of issue 11 (no hard_negative role: found by name)."""
    raw = yaml.safe_load((PACKAGED_CARDS_DIR / "yolox_nano.yaml").read_text())
    raw.update(name="site", classes=["e-bike", "bicycle", "motorcycle", "car", "truck", "person", "stroller",
                                     "wheelchair", "shopping_trolley", "mobility scooter"],
               roles={"vehicle": ["car", "truck"], "ebike": ["e-bike", "motorcycle"]})
    return ModelCard.model_validate(raw)


def test_fire_lanes_watch_vehicles_and_two_wheelers() -> None:
    card = ModelRegistry().card("yolox_nano")
    cam = camera({"id": "lane", "kind": "fire_lane", "polygon": SQUARE})
    resolved = zone_classes(cam, cam.zones[0], card, "here")
    assert names(card, resolved.watched) == {"car", "truck", "bus", "motorcycle", "bicycle"}


def test_ebike_zone_excludes_bicycles_unless_the_zone_says_so() -> None:
    card = ModelRegistry().card("yolox_nano")
    cam = camera({"id": "door", "kind": "ebike_entry", "polygon": SQUARE},
                 {"id": "lift", "kind": "ebike_entry", "polygon": SQUARE, "bicycles_are_ebikes": True})
    door = zone_classes(cam, cam.zones[0], card, "door").ebike
    lift = zone_classes(cam, cam.zones[1], card, "lift").ebike
    assert door is not None and lift is not None
    assert names(card, door.ebike) == {"motorcycle"} and names(card, door.bicycle) == {"bicycle"}
    assert names(card, lift.ebike) == {"motorcycle", "bicycle"} and not lift.bicycle
    assert not door.negative  # COCO has no stroller, wheelchair, trolley or mobility scooter


def test_hard_negatives_found_by_name_and_grouped_with_two_wheelers() -> None:
    card = site_card()
    cam = camera({"id": "door", "kind": "ebike_entry", "polygon": SQUARE})
    resolved = zone_classes(cam, cam.zones[0], card, "door").ebike
    assert resolved is not None
    assert names(card, resolved.ebike) == {"e-bike", "motorcycle"}
    assert names(card, resolved.negative) == {"stroller", "wheelchair", "shopping_trolley", "mobility scooter"}
    groups = class_groups(card.classes, card)
    assert groups[card.classes.index("stroller")] == groups[card.classes.index("e-bike")] == TWO_WHEELER_GROUP
    assert groups[card.classes.index("car")] == VEHICLE_GROUP
    assert card.classes.index("person") not in groups


def test_configured_hard_negatives_must_be_model_classes() -> None:
    card = ModelRegistry().card("yolox_nano")
    cam = camera({"id": "door", "kind": "ebike_entry", "polygon": SQUARE}, hard_negative_classes=["stroller"])
    with pytest.raises(ConfigError, match=r"door: class 'stroller' is not in model 'yolox_nano'"):
        zone_classes(cam, cam.zones[0], card, "door")


def test_bicycles_are_ebikes_only_on_ebike_zones() -> None:
    with pytest.raises(ValueError, match="bicycles_are_ebikes is only meaningful for ebike_entry"):
        camera({"id": "lane", "kind": "fire_lane", "polygon": SQUARE, "bicycles_are_ebikes": True})
    with pytest.raises(ValueError, match="cannot exceed ebike_vote_frames"):
        camera(ebike_confirm_frames=6, ebike_vote_frames=5)
