"""Which of a camera's ONVIF media profiles to analyse: the smallest picture that still fills the model.

Decoding is most of what a camera costs the gateway: every frame the camera sends is decoded,
whether or not it is analysed (H.264 frames depend on each other), so a 1280x720 main stream at
15 fps costs several times what its 640x360 sub-stream does, for detections no better: the model
sees 416x416 either way. ``choose_profile`` therefore picks the lowest-resolution profile whose
picture (or, with ``roi.mode: zones``, whose zone crop) is still at least the model input, i.e.
is never *upscaled* by the letterbox. Profiles that do not state their resolution are considered
only when none does.

Zones are drawn on one picture size. When the analysed profile is not the main stream (the first
profile), the zones are scaled from the main stream's size (or ``zones_size``) to the analysed
frame (``edge.vision.zones.Zone.scaled``), so existing configs stay right.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar


class ProfileLike(Protocol):
    @property
    def token(self) -> str: ...

    @property
    def width(self) -> int | None: ...

    @property
    def height(self) -> int | None: ...


P = TypeVar("P", bound=ProfileLike)


def choose_profile(
    profiles: Sequence[P], model_width: int, model_height: int, *, crop: tuple[float, float] = (1.0, 1.0)
) -> P:
    """The lowest-resolution profile whose ``crop`` share (width, height) is >= the model input.

    The letterbox scale is ``min(model_w / w, model_h / h)``: a picture is big enough when that is
    <= 1 (downscaled or 1:1). Falls back to the largest known profile, then to the first one.
    """
    if not profiles:
        raise ValueError("no media profiles to choose from")
    known = [p for p in profiles if p.width and p.height]
    if not known:
        return profiles[0]

    def fills(p: P) -> bool:
        assert p.width and p.height
        return min(model_width / (p.width * crop[0]), model_height / (p.height * crop[1])) <= 1.0

    def pixels(p: P) -> int:
        return (p.width or 0) * (p.height or 0)

    big_enough = [p for p in known if fills(p)]
    return min(big_enough, key=pixels) if big_enough else max(known, key=pixels)
