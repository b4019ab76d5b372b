"""The camera simulator's sensor noise and bitrate options (what makes the capacity bench's streams realistic)."""

from __future__ import annotations

import itertools

import numpy as np

from simulators.camera.__main__ import parse_camera
from simulators.camera.noise import SensorNoise
from simulators.camera.rtsp import MountSpec


def test_noise_has_the_asked_spread_and_changes_every_frame() -> None:
    image = np.full((360, 640, 3), 128, np.uint8)
    noise = SensorNoise(seed=1)
    frames = [noise.apply(image, 3.5) for _ in range(4)]
    assert np.all(image == 128)  # the rendered frame is not touched
    for frame in frames:
        delta = frame.astype(np.float64) - 128
        assert abs(delta.std() - 3.5) < 0.2 and abs(delta.mean()) < 0.1
    # Consecutive frames carry different noise (an encoder cannot predict it from the last frame).
    assert all(np.mean(a != b) > 0.5 for a, b in itertools.pairwise(frames))


def test_noise_saturates_instead_of_wrapping() -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    image[4:] = 255
    out = SensorNoise(seed=2).apply(image, 20.0)
    assert out[:4].max() <= 127 and out[4:].min() >= 128  # no 0 -> 255 or 255 -> 0 wrap-around


def test_cli_options_for_noise_and_bitrate() -> None:
    spec = parse_camera("c=lane_a7_park@18081,fps=15,main=1280x720,sub=640x360,noise=3.5,bitrate=2")
    assert spec.noise == 3.5 and spec.bitrate_scale == 2.0
    assert MountSpec("c", 1280, 720, 15, spec.bitrate_scale).bitrate_scale == 2.0
