"""The classes a site model learns, and how a COCO model's classes map onto them.

The product needs what COCO lacks: an e-bike (电动车) class and the hard negatives that must never
raise an e-bike alarm (stroller, wheelchair, shopping trolley, mobility scooter). A fine-tuned model
starts each class from the COCO class most like it (``COCO_SOURCE``), so its head is trained from
the first step. Labels shown to staff come from the panel's locale files (``label.class.<name>``).
"""

from __future__ import annotations

from collections.abc import Sequence

SITE_CLASSES: tuple[str, ...] = (
    "ebike",
    "bicycle",
    "motorcycle",
    "car",
    "truck_van",
    "person",
    "stroller",
    "wheelchair",
    "shopping_trolley",
    "mobility_scooter",
)
HARD_NEGATIVES: tuple[str, ...] = ("stroller", "wheelchair", "shopping_trolley", "mobility_scooter")

# Site class -> the COCO class its weights start from (None: no similar COCO class).
COCO_SOURCE: dict[str, str | None] = {
    "ebike": "motorcycle",
    "bicycle": "bicycle",
    "motorcycle": "motorcycle",
    "car": "car",
    "truck_van": "truck",
    "person": "person",
    "stroller": None,
    "wheelchair": None,
    "shopping_trolley": None,
    "mobility_scooter": None,
}

# COCO class -> site class, for pre-filling labels and for scoring a COCO model on site labels. A COCO
# "motorcycle" on an estate is nearly always an electric moped, so it pre-fills as an e-bike.
COCO_TO_SITE: dict[str, str] = {
    "person": "person",
    "bicycle": "bicycle",
    "motorcycle": "ebike",
    "car": "car",
    "truck": "truck_van",
    "bus": "truck_van",
}

SITE_ROLES: dict[str, tuple[str, ...]] = {
    "vehicle": ("car", "truck_van"),
    "ebike": ("ebike", "motorcycle"),
    "bicycle": ("bicycle",),
    "hard_negative": HARD_NEGATIVES,
}


def to_site_class(name: str, model_classes: Sequence[str]) -> str | None:
    """The site class a model's class ``name`` stands for, or None when it has none.

    A model that already uses site classes maps to itself; a COCO model maps through ``COCO_TO_SITE``.
    """
    if set(model_classes) <= set(SITE_CLASSES):
        return name if name in SITE_CLASSES else None
    return COCO_TO_SITE.get(name)


def coco_sources(base_classes: Sequence[str]) -> list[int | None]:
    """For each site class, the index of its starting class in ``base_classes`` (or None)."""
    out: list[int | None] = []
    for site in SITE_CLASSES:
        source = COCO_SOURCE[site]
        if site in base_classes:
            out.append(list(base_classes).index(site))
        elif source is not None and source in base_classes:
            out.append(list(base_classes).index(source))
        else:
            out.append(None)
    return out
