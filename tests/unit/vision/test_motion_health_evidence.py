"""Motion gating, frozen/covered detection, and evidence images."""

from __future__ import annotations

from datetime import UTC, datetime

import cv2
import numpy as np

from edge.config.cameras import GatingConfig, HealthConfig, ZoneConfig
from edge.vision.detections import Box
from edge.vision.evidence import render_evidence
from edge.vision.image_health import ImageHealthMonitor
from edge.vision.motion import MotionGate, small_grey
from edge.vision.zones import Zone

RNG = np.random.default_rng(7)


def _scene() -> np.ndarray:
    """A structured 320x240 scene: a gradient with a few blocks (what a street looks like to a 160 px gate)."""
    image = np.zeros((240, 320, 3), np.uint8)
    image[:] = np.linspace(60, 190, 320, dtype=np.uint8)[None, :, None]
    cv2.rectangle(image, (40, 30), (120, 90), (30, 30, 30), -1)
    cv2.rectangle(image, (200, 140), (300, 220), (220, 220, 220), -1)
    return image


BASE = _scene()


def noisy(image: np.ndarray) -> np.ndarray:
    noise = RNG.normal(0, 1.5, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def zone(polygon: list[tuple[float, float]]) -> Zone:
    return Zone.from_config(ZoneConfig(id="z", kind="fire_lane", polygon=polygon), (2,))


def test_gate_skips_static_frames_and_keeps_a_heartbeat() -> None:
    gate = MotionGate(GatingConfig(heartbeat_s=10, settle_s=2), [zone([(0, 120), (160, 120), (160, 240), (0, 240)])])
    reasons = []
    for t in range(0, 25):
        small = small_grey(noisy(BASE), 160)
        reasons.append(gate.decide(small, 320, float(t)).reason)
    assert reasons[0] == "first"
    assert reasons.count("heartbeat") == 2 and reasons[10] == "heartbeat" and reasons[20] == "heartbeat"
    assert set(reasons[1:10]) == {"static"}


def test_gate_sees_motion_near_the_zone_but_not_far_away() -> None:
    gate = MotionGate(GatingConfig(heartbeat_s=100, settle_s=2), [zone([(0, 160), (80, 160), (80, 240), (0, 240)])])
    gate.decide(small_grey(BASE, 160), 320, 0.0)
    far = BASE.copy()
    far[0:60, 250:320] = 255  # top-right corner: outside the zones' surroundings
    assert gate.decide(small_grey(far, 160), 320, 1.0).reason == "static"
    near = far.copy()
    near[170:230, 20:70] = 0  # a dark object inside the zone
    decision = gate.decide(small_grey(near, 160), 320, 2.0)
    assert decision.reason == "motion" and decision.motion > 0.05
    assert gate.decide(small_grey(near, 160), 320, 3.0).reason == "settle"
    assert gate.decide(small_grey(near, 160), 320, 6.0).reason == "static"


def test_gate_disabled_infers_every_frame() -> None:
    gate = MotionGate(GatingConfig(enabled=False), [])
    assert all(gate.decide(small_grey(BASE, 160), 320, float(t)).infer for t in range(5))


def test_frozen_after_identical_frames_and_recovers() -> None:
    monitor = ImageHealthMonitor(HealthConfig(frozen_after_s=30, covered_after_s=10))
    still = small_grey(BASE, 160)
    states = [monitor.update(still, float(t)) for t in range(0, 40, 5)]
    assert [s.frozen for s in states] == [False] * 7 + [True]  # identical since t=5: frozen at 35
    assert not monitor.update(small_grey(noisy(BASE), 160), 40.0).frozen


def test_live_noise_is_not_frozen_and_a_covered_lens_is_covered() -> None:
    monitor = ImageHealthMonitor(HealthConfig(frozen_after_s=5, covered_after_s=10))
    assert not any(monitor.update(small_grey(noisy(BASE), 160), float(t)).frozen for t in range(20))
    covered = noisy(np.full((240, 320, 3), 40, np.uint8))  # tape over the lens: flat, sensor noise only
    states = [monitor.update(small_grey(covered, 160), float(t)) for t in range(20, 35)]
    assert not states[9].covered and states[10].covered  # flat since t=20, covered at 30
    assert not monitor.update(small_grey(BASE, 160), 36.0).covered


def test_evidence_jpeg_has_box_and_zone_drawn() -> None:
    frame = np.full((300, 400, 3), 128, np.uint8)
    z = zone([(10, 150), (390, 150), (390, 290), (10, 290)])
    box = Box(100, 100, 200, 250, 0.9, 2, "car", 7)
    jpeg = render_evidence(frame, z, box, (box,), "cam1 fire.lane_blocked lane", datetime(2025, 5, 1, tzinfo=UTC))
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (300, 400, 3)
    b, g, r = (int(v) for v in image[180, 100])  # the box's left edge: red
    assert r > 200 and g < 80 and b < 80
    inside_zone = image[270, 300].astype(int)  # zone fill tints the grey towards orange-red
    assert inside_zone[2] > inside_zone[0] + 20
    assert image[60, 300].tolist() == [128, 128, 128] or abs(int(image[60, 300][0]) - 128) < 4  # untouched
