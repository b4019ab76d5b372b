"""Camera scenarios: a scene, a timeline, the zones to draw, and the facts behind the ground truth.

Each scenario states which shared media file it was built from. What physically happens in it
(when a car stops and moves off, when an e-bike crosses the line) and the alarms that must follow
are the ground truth, kept with the tests in ``tests/data/scenario_truth.yaml``; the keyframes
below are where those times come from. Times are scene seconds at ``time_scale`` 1; ``scaled(k)``
stretches the story by k (k < 1 plays it faster; zone geometry unchanged), so an integration test
can run the 6-minute fire-lane story in 20 s with dwell and hold scaled the same way.

Scenarios:

``lane_a7_park``  (a7_frigate_ground-plane.jpg, MIT) a doorbell camera over an estate street: the
    street is a fire lane. The car is lifted out of the photo; it drives in from the left, parks
    where the photo has it for 200 s, drives off; later another pass drives straight through.
``door_b2_motorcycle``  (b2_coco_000000000629.jpg, CC BY 2.0) a unit door: the motorcycle rides in
    from the right to the door twice, 60 s apart, each time crossing the entry line.
``lift_b1_ebike``  (b1_paddleclas_elevator_ebike_result.png, Apache-2.0) a lift camera with an e-bike
    inside (the photo unchanged, as its README asks): one entry, present from the start.
``lane_a4_traffic``  (a4_bgslibrary_video02.avi, MIT) real traffic through a lane zone, looped: a
    drive-through negative, nothing stops.
``lane_a1_topdown``  (a1_intel_car-detection.mp4, CC BY 4.0) the real top-down lot clip with a
    car (cut from the clip's own frame 205) standing in the lane for 150 s: the case the COCO model
    misses (see docs/vision-quality.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np
from numpy.typing import NDArray

from simulators.camera.scenes import (
    ClipScene,
    Cutout,
    Image,
    Keyframe,
    Scene,
    Sprite,
    SpritePath,
    StillScene,
    add_noise,
    clip_jpegs,
    load_image,
    paste,
)


@dataclass(frozen=True)
class ZoneSpec:
    """A zone to configure on the camera, as plain data (becomes an ``edge.config.cameras.ZoneConfig``)."""

    id: str
    kind: str
    polygon: tuple[tuple[float, float], ...]
    anchor: str = "bottom_center"
    entry_line: tuple[tuple[float, float], tuple[float, float]] | None = None

    def as_config(self) -> dict[str, object]:
        out: dict[str, object] = {
            "id": self.id, "kind": self.kind, "polygon": [list(p) for p in self.polygon], "anchor": self.anchor,
        }
        if self.entry_line is not None:
            out["entry_line"] = [list(p) for p in self.entry_line]
        return out


@dataclass
class Scenario:
    name: str
    source: str
    description: str
    scene: Scene
    duration_s: float
    zones: tuple[ZoneSpec, ...]
    time_scale: float = 1.0
    stream_fps: float = 10.0

    @property
    def width(self) -> int:
        return self.scene.width & ~1

    @property
    def height(self) -> int:
        return self.scene.height & ~1

    def render(self, t: float) -> Image:
        """The frame at scenario time ``t`` (seconds at this scenario's speed), looping.

        Cropped to even width and height (H.264 in 4:2:0 needs both even; b2 is 427 px high).
        """
        frame = self.scene.render((t / self.time_scale) % (self.duration_s))
        return frame[: self.height, : self.width]

    @property
    def period_s(self) -> float:
        return self.duration_s * self.time_scale

    def scaled(self, time_scale: float) -> Scenario:
        return replace(self, time_scale=time_scale)


# -- a7: the parked car ---------------------------------------------------------------------------

A7 = "a7_frigate_ground-plane.jpg"
A7_CAR = Cutout(
    polygon=((700, 507), (711, 456), (728, 438), (823, 430), (882, 453), (917, 468), (927, 482),
             (926, 505), (885, 520), (745, 521), (688, 523)),
    fill_from_x=935, fill_period=100,
)
# The woman in the foreground stands in front of the road: pixels restored after pasting the car.
A7_OCCLUDER = ((612, 455), (648, 455), (655, 490), (692, 518), (702, 600), (692, 645), (675, 700),
               (702, 712), (695, 750), (605, 750), (618, 690), (598, 600), (583, 560), (588, 510), (608, 490))
A7_LANE = ZoneSpec("lane", "fire_lane", ((560, 458), (1105, 455), (1105, 535), (560, 540)))


class _A7Scene(StillScene):
    """a7 with the car on a path, passing behind the woman in the foreground."""

    def render(self, t: float) -> Image:
        frame = super().render(t)
        keep = _a7_occluder()
        frame[keep] = load_image(self.image_name)[keep]
        return frame


@lru_cache(maxsize=1)
def _a7_occluder() -> NDArray[np.bool_]:
    """The woman's pixels (GrabCut inside a hand-drawn outline), drawn over anything pasted behind her."""
    image = load_image(A7)
    outline = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(outline, [np.asarray(A7_OCCLUDER, np.int32)], 255)
    labels = np.where(outline > 0, cv2.GC_PR_FGD, cv2.GC_BGD).astype(np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(1)
    cv2.grabCut(image, labels, None, bgd, fgd, 4, cv2.GC_INIT_WITH_MASK)
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def lane_a7_park() -> Scenario:
    # The car's original top-left x is ~688; dx -930 is off-frame left, +500 off-frame right.
    park = SpritePath((Keyframe(20, -930), Keyframe(32, 0), Keyframe(232, 0), Keyframe(240, 500)))
    through = SpritePath((Keyframe(330, -930), Keyframe(345, 500)))
    scene = _A7Scene(A7, A7_CAR, (park, through))
    return Scenario(
        name="lane_a7_park",
        source=f"{A7} (blakeblackshear/frigate docs/static/img/ground-plane.jpg, MIT); car lifted out and moved",
        description="Estate street as fire lane: a car parks for 200 s then leaves; later a car drives through.",
        scene=scene,
        duration_s=380.0,
        zones=(A7_LANE,),
    )


# -- b2: the motorcycle at the unit door --------------------------------------------------------------

B2 = "b2_coco_000000000629.jpg"
B2_MOTO = Cutout(
    polygon=((380, 245), (395, 252), (398, 282), (430, 282), (470, 295), (540, 293), (545, 330), (568, 365),
             (565, 395), (535, 410), (460, 415), (350, 410), (318, 390), (318, 360), (335, 330), (350, 300),
             (372, 280)),
    fill_from_x=5, fill_period=110,
)
B2_DOOR = ZoneSpec(
    "door", "ebike_entry", ((90, 330), (340, 330), (340, 425), (90, 425)),
    entry_line=((340, 300), (340, 425)),
)


def door_b2_motorcycle() -> Scenario:
    # dx +340: off-frame right; dx -200: standing in front of the door. It is taken inside (vanishes).
    first = SpritePath((Keyframe(10, 340), Keyframe(20, -200), Keyframe(40, -200)))
    second = SpritePath((Keyframe(70, 340), Keyframe(80, -200), Keyframe(95, -200)))
    return Scenario(
        name="door_b2_motorcycle",
        source=f"{B2} (COCO train2017 id 629, Flickr 5258978143, CC BY 2.0); motorcycle lifted out and moved",
        description="Unit door: a motorcycle rides up to the door and is taken in, twice, 60 s apart.",
        scene=StillScene(B2, B2_MOTO, (first, second)),
        duration_s=120.0,
        zones=(B2_DOOR,),
    )


# -- b1: the e-bike in the lift ---------------------------------------------------------------------

B1 = "b1_paddleclas_elevator_ebike_result.png"
B1_LIFT = ZoneSpec("lift", "ebike_entry", ((100, 230), (480, 230), (520, 378), (60, 378)))


def lift_b1_ebike() -> Scenario:
    return Scenario(
        name="lift_b1_ebike",
        source=f"{B1} (PaddlePaddle/PaddleClas, Apache-2.0), shown unchanged",
        description="Lift car with an e-bike between two riders, present throughout: one entry.",
        scene=StillScene(B1),
        duration_s=60.0,
        zones=(B1_LIFT,),
    )


# -- a4: real traffic, nothing stops ------------------------------------------------------------------

A4 = "a4_bgslibrary_video02.avi"
A4_LANE = ZoneSpec("lane", "fire_lane", ((60, 240), (232, 240), (262, 100), (205, 100)))


def lane_a4_traffic() -> Scenario:
    return Scenario(
        name="lane_a4_traffic",
        source=f"{A4} (andrewssobral/bgslibrary dataset/video02.avi, MIT)",
        description="Dual carriageway: cars, vans and a light truck drive through the zone; none stops.",
        scene=ClipScene(A4),
        duration_s=30.0,
        zones=(A4_LANE,),
        stream_fps=12.5,
    )


# -- a1: top-down lot, a car standing in the lane -----------------------------------------------------

A1 = "a1_intel_car-detection.mp4"
A1_LANE = ZoneSpec("lane", "fire_lane", ((280, 120), (500, 120), (500, 432), (280, 432)), anchor="center")
A1_CAR_FRAME = 205
A1_CAR_BOX = (316, 213, 498, 432)  # the red car in frame 205, x1 y1 x2 y2


class _A1Scene(ClipScene):
    """The real clip with the red car (a rectangular crop of its own frame 205: plain asphalt around it
    blends without a mask) standing in the lane from 20 s to 170 s."""

    def render(self, t: float) -> Image:
        frame = super().render(t)
        if 20.0 <= t <= 170.0:
            paste(frame, _a1_car(), 0.0, 0.0)
        seed = int(t * 1000) & 0xFFFFFFFF
        return add_noise(frame, seed, 1.0)


@lru_cache(maxsize=1)
def _a1_car() -> Sprite:
    frames, _ = clip_jpegs(A1)
    image = cv2.imdecode(np.frombuffer(frames[A1_CAR_FRAME], np.uint8), cv2.IMREAD_COLOR)
    x1, y1, x2, y2 = A1_CAR_BOX
    pixels = image[y1:y2, x1:x2].copy()
    return Sprite(pixels, np.ones((y2 - y1, x2 - x1, 1), np.float32), x1, y1)


def lane_a1_topdown() -> Scenario:
    return Scenario(
        name="lane_a1_topdown",
        source=f"{A1} (intel-iot-devkit/sample-videos car-detection.mp4, CC BY 4.0); car from frame 205 held",
        description="High-mounted top-down lane camera: a car stands in the lane for 150 s; others drive by.",
        scene=_A1Scene(A1),
        duration_s=260.0,
        zones=(A1_LANE,),
        stream_fps=12.5,
    )


SCENARIOS = {
    "lane_a7_park": lane_a7_park,
    "door_b2_motorcycle": door_b2_motorcycle,
    "lift_b1_ebike": lift_b1_ebike,
    "lane_a4_traffic": lane_a4_traffic,
    "lane_a1_topdown": lane_a1_topdown,
}


def scenario(name: str, time_scale: float = 1.0) -> Scenario:
    try:
        factory = SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})") from None
    built = factory()
    return built.scaled(time_scale) if time_scale != 1.0 else built
