"""Which of a model's classes each zone reacts to, and which classes are one physical object.

Resolved once per camera from the model card's ``roles`` (``vehicle``, ``ebike``, ``bicycle``,
``hard_negative``) and the camera's config, so the analytics only ever see class ids:

* a **fire_lane** zone watches vehicles *and* two-wheelers (e-bikes and bicycles): a parked e-bike
  blocks a fire lane too (004 8.3.5 b) "电瓶车违停、堵塞");
* an **ebike_entry** zone counts its e-bike classes; a pedal bicycle is *not* an e-bike unless the
  zone says ``bicycles_are_ebikes`` (or lists ``bicycle`` in its own ``classes``); hard negatives
  (stroller, wheelchair, shopping trolley, mobility scooter, when the model has them) veto.

Unknown class names are config errors naming the camera and zone.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.config.cameras import CameraConfig, ZoneConfig
from edge.errors import ConfigError
from edge.vision.ebike import EbikeClasses
from models.registry import ModelCard

VEHICLE_GROUP = 1
TWO_WHEELER_GROUP = 2
COCO_VEHICLES = ("car", "truck", "bus")
COCO_TWO_WHEELERS = ("motorcycle", "bicycle")
HARD_NEGATIVE_NAMES = ("stroller", "wheelchair", "shopping trolley", "mobility scooter", "pram", "baby carriage")


def _norm(name: str) -> str:
    return name.lower().replace("_", " ").replace("-", " ")


def _named(card: ModelCard, wanted: tuple[str, ...]) -> list[str]:
    keys = {_norm(w) for w in wanted}
    return [c for c in card.classes if _norm(c) in keys]


def role(card: ModelCard, name: str) -> list[str]:
    """Class names of a role; ``bicycle``, ``hard_negative`` and ``person`` fall back to classes of those names."""
    if name in card.roles:
        return list(card.roles[name])
    if name == "bicycle":
        return _named(card, ("bicycle",))
    if name == "hard_negative":
        return _named(card, HARD_NEGATIVE_NAMES)
    if name == "person":
        return _named(card, ("person", "pedestrian"))
    return []


def person_ids(camera: CameraConfig, card: ModelCard) -> tuple[int, ...]:
    """Class ids blurred as people in evidence (``privacy.person_classes`` or the card's people)."""
    names = camera.privacy.person_classes or role(card, "person")
    return card.class_ids(names, where=f"cameras[{camera.id}].privacy.person_classes")


def class_groups(labels: tuple[str, ...], card: ModelCard | None = None) -> dict[int, int]:
    """Class id -> group id for classes one physical object flickers between.

    COCO names always group (car/truck/bus; motorcycle/bicycle); with a card, its vehicle role joins
    the vehicle group, and its e-bike, bicycle and hard-negative classes the two-wheeler group (a
    stroller seen as a bicycle in one frame and a stroller in the next is one object with one track,
    whose per-frame classes then vote).
    """
    vehicles = list(COCO_VEHICLES)
    wheels = list(COCO_TWO_WHEELERS)
    if card is not None:
        vehicles += role(card, "vehicle")
        wheels += role(card, "ebike") + role(card, "bicycle") + role(card, "hard_negative")
    groups: dict[int, int] = {}
    for group, names in ((VEHICLE_GROUP, vehicles), (TWO_WHEELER_GROUP, wheels)):
        for name in names:
            if name in labels:
                groups[labels.index(name)] = group
    return groups


@dataclass(frozen=True, slots=True)
class ZoneClasses:
    """The class ids a zone watches (``watched``) and, for e-bike zones, how they vote."""

    watched: tuple[int, ...]
    ebike: EbikeClasses | None = None


def zone_classes(camera: CameraConfig, zone: ZoneConfig, card: ModelCard, where: str) -> ZoneClasses:
    """Resolve ``zone``'s classes against ``card``; raises ``ConfigError`` naming ``where``."""
    a = camera.analytics
    if zone.kind == "fire_lane":
        names = zone.classes or a.vehicle_classes or (role(card, "vehicle") + role(card, "ebike") + role(card, "bicycle"))
        if not names:
            raise ConfigError(f"{where}: no classes given and model {card.name!r} has no vehicle role")
        return ZoneClasses(card.class_ids(list(dict.fromkeys(names)), where=where))
    bicycles = role(card, "bicycle")
    if zone.classes is not None:
        ebike_names = list(zone.classes)
    else:
        ebike_names = [n for n in (a.ebike_classes or role(card, "ebike")) if n not in bicycles]
    if zone.bicycles_are_ebikes:
        ebike_names += [b for b in bicycles if b not in ebike_names]
    if not ebike_names:
        raise ConfigError(f"{where}: no classes given and model {card.name!r} has no ebike role")
    bicycle_names = [b for b in bicycles if b not in ebike_names]
    negative_names = a.hard_negative_classes if a.hard_negative_classes is not None else role(card, "hard_negative")
    classes = EbikeClasses(
        frozenset(card.class_ids(ebike_names, where=where)),
        frozenset(card.class_ids(bicycle_names, where=where)),
        frozenset(card.class_ids(negative_names, where=where)),
    )
    return ZoneClasses(tuple(sorted(classes.watched)), classes)
