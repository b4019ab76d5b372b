"""Scenes rendered from the shared test media: real pixels, composed into scripted timelines.

The shared media are stills and two short clips (``../shared/media/README.md``). A camera scenario
needs time: a car that arrives, parks and leaves; a motorcycle that rolls to a unit door twice.
We compose those from the media's own pixels:

- ``StillScene``: a still whose object of interest has been lifted out (a *sprite*: the object's
  pixels under a hand-drawn polygon, refined by GrabCut) and the hole refilled by tiling the same
  rows from an empty part of the image (road next to the car, wall next to the motorcycle). The
  sprite is pasted back along a keyframed path. At the object's original position the frame is the
  original photo again, so what the detector sees while the car is parked is the real image.
- ``ClipScene``: a real clip, looped.

Each frame gets a little deterministic sensor noise (sigma ~1.5 grey levels, seeded by scene time),
as real sensors add; without it, a composed static scene would be bit-identical frame to frame and
read as a frozen camera.

Media are found through ``media_dir``. Nothing here edits b1
(its README forbids edits beyond cropping): b1 is only ever shown whole.
"""

from __future__ import annotations

import itertools
import os
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

Image = NDArray[np.uint8]
MEDIA_ENV = "EDGE_SHARED_MEDIA"


def media_dir() -> Path:
    """``$EDGE_SHARED_MEDIA``, else ``$EDGE_SHARED_DIR/media``, else ``<repo>/../shared/media``."""
    env = os.environ.get(MEDIA_ENV)
    if env:
        return Path(env)
    shared = os.environ.get("EDGE_SHARED_DIR")
    if shared:
        return Path(shared) / "media"
    return Path(__file__).resolve().parents[2].parent / "shared" / "media"


def media_path(name: str) -> Path:
    path = media_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"shared media file {path} not found (set {MEDIA_ENV} to the media directory)")
    return path


@lru_cache(maxsize=16)
def load_image(name: str) -> Image:
    image = cv2.imread(str(media_path(name)), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot decode {name}")
    image.setflags(write=False)
    return image


@dataclass(frozen=True)
class Sprite:
    """An object's pixels with a soft alpha mask, cut from a still at (x, y) = its top-left there."""

    pixels: Image
    alpha: NDArray[np.float32]  # (h, w, 1), 0..1
    x: int
    y: int


@dataclass(frozen=True)
class Cutout:
    """How to lift an object out of a still: its outline, and where to tile the refill from."""

    polygon: tuple[tuple[int, int], ...]
    fill_from_x: int  # start column of an object-free band, same rows
    fill_period: int  # its width


def _polygon_mask(shape: tuple[int, ...], polygon: tuple[tuple[int, int], ...], grow: int) -> Image:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.asarray(polygon, np.int32)], 255)
    if grow:
        mask = cv2.dilate(mask, np.ones((grow, grow), np.uint8))
    return mask


@lru_cache(maxsize=8)
def cut_out(name: str, cutout: Cutout) -> tuple[Image, Sprite]:
    """(background without the object, the object as a sprite) for a still."""
    image = load_image(name)
    hole = _polygon_mask(image.shape, cutout.polygon, 7)
    background = image.copy()
    ys, xs = np.nonzero(hole)
    x0 = int(xs.min())
    background[ys, xs] = image[ys, cutout.fill_from_x + ((xs - x0) % cutout.fill_period)]
    # GrabCut inside the outline: probable foreground in the polygon, certain background outside.
    inner = _polygon_mask(image.shape, cutout.polygon, 0)
    labels = np.where(inner > 0, cv2.GC_PR_FGD, cv2.GC_BGD).astype(np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(1)
    cv2.grabCut(image, labels, None, bgd, fgd, 4, cv2.GC_INIT_WITH_MASK)
    fg = np.where((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    x, y, w, h = cv2.boundingRect(fg)
    alpha = cv2.GaussianBlur(fg[y : y + h, x : x + w], (5, 5), 0).astype(np.float32)[..., None] / 255.0
    sprite = Sprite(image[y : y + h, x : x + w].copy(), alpha, x, y)
    background.setflags(write=False)
    return background, sprite


@dataclass(frozen=True)
class Keyframe:
    """Sprite top-left offset (dx, dy) from its original position at scene time ``t`` (seconds)."""

    t: float
    dx: float
    dy: float = 0.0


@dataclass(frozen=True)
class SpritePath:
    """Piecewise-linear motion; the sprite is absent before the first and after the last keyframe."""

    keyframes: tuple[Keyframe, ...]

    def offset(self, t: float) -> tuple[float, float] | None:
        ks = self.keyframes
        if t < ks[0].t or t > ks[-1].t:
            return None
        for a, b in itertools.pairwise(ks):
            if a.t <= t <= b.t:
                f = 0.0 if b.t == a.t else (t - a.t) / (b.t - a.t)
                return a.dx + f * (b.dx - a.dx), a.dy + f * (b.dy - a.dy)
        return ks[-1].dx, ks[-1].dy


def paste(frame: Image, sprite: Sprite, dx: float, dy: float) -> None:
    """Alpha-blend ``sprite`` into ``frame`` (in place) shifted by (dx, dy), clipped to the frame."""
    h, w = sprite.pixels.shape[:2]
    x, y = round(sprite.x + dx), round(sprite.y + dy)
    fx1, fy1 = max(x, 0), max(y, 0)
    fx2, fy2 = min(x + w, frame.shape[1]), min(y + h, frame.shape[0])
    if fx1 >= fx2 or fy1 >= fy2:
        return
    sx1, sy1 = fx1 - x, fy1 - y
    src = sprite.pixels[sy1 : sy1 + fy2 - fy1, sx1 : sx1 + fx2 - fx1].astype(np.float32)
    a = sprite.alpha[sy1 : sy1 + fy2 - fy1, sx1 : sx1 + fx2 - fx1]
    dst = frame[fy1:fy2, fx1:fx2].astype(np.float32)
    frame[fy1:fy2, fx1:fx2] = (src * a + dst * (1.0 - a) + 0.5).astype(np.uint8)


_NOISE_BANK = 8


@lru_cache(maxsize=32)
def _noise_fields(shape: tuple[int, ...], sigma: float) -> tuple[NDArray[np.int16], ...]:
    rng = np.random.default_rng(12345)
    return tuple(np.round(rng.normal(0.0, sigma, shape)).astype(np.int16) for _ in range(_NOISE_BANK))


def add_noise(frame: Image, seed: int, sigma: float = 1.5) -> Image:
    """``frame`` plus one of a few fixed Gaussian noise fields, picked by ``seed`` (cheap: ~5 ms/MP)."""
    fields = _noise_fields(frame.shape, sigma)
    noisy = frame.astype(np.int16)
    noisy += fields[seed % _NOISE_BANK]
    return np.clip(noisy, 0, 255).astype(np.uint8)


class Scene:
    """Something that renders a BGR frame for any scene time ``t`` (seconds), deterministically."""

    width: int
    height: int

    def render(self, t: float) -> Image:
        raise NotImplementedError


@dataclass
class StillScene(Scene):
    image_name: str
    cutout: Cutout | None = None
    paths: tuple[SpritePath, ...] = ()
    noise: float = 1.5
    width: int = field(init=False)
    height: int = field(init=False)

    def __post_init__(self) -> None:
        image = load_image(self.image_name)
        self.height, self.width = image.shape[:2]

    def render(self, t: float) -> Image:
        if self.cutout is None:
            frame = load_image(self.image_name).copy()
        else:
            background, sprite = cut_out(self.image_name, self.cutout)
            frame = background.copy()
            for path in self.paths:
                offset = path.offset(t)
                if offset is not None:
                    paste(frame, sprite, *offset)
        seed = zlib.crc32(f"{self.image_name}:{round(t * 1000)}".encode())
        return add_noise(frame, seed, self.noise) if self.noise > 0 else frame


@dataclass
class ClipScene(Scene):
    """A real clip, looped; frames are decoded once and kept as JPEG bytes (a few MB)."""

    clip_name: str
    width: int = field(init=False)
    height: int = field(init=False)
    fps: float = field(init=False)

    def __post_init__(self) -> None:
        frames = clip_jpegs(self.clip_name)
        first = cv2.imdecode(np.frombuffer(frames[0][0], np.uint8), cv2.IMREAD_COLOR)
        self.height, self.width = first.shape[:2]
        self.fps = frames[1]

    def render(self, t: float) -> Image:
        frames, fps = clip_jpegs(self.clip_name)
        index = int(t * fps) % len(frames)
        return cv2.imdecode(np.frombuffer(frames[index], np.uint8), cv2.IMREAD_COLOR)


@lru_cache(maxsize=4)
def clip_jpegs(name: str) -> tuple[tuple[bytes, ...], float]:
    capture = cv2.VideoCapture(str(media_path(name)))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames: list[bytes] = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes())
    capture.release()
    if not frames:
        raise ValueError(f"cannot decode any frame of {name}")
    return tuple(frames), float(fps)
