"""The trainable graph, the loss and the trainer: parity with onnxruntime, export, resume, pause.

These run the real shipped YOLOX-Nano graph in JAX at small input sizes (64-128 px) to stay fast;
the end-to-end test trains at 320 px.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from edge.config.training import TrainingConfig
from edge.training.classes import SITE_CLASSES
from edge.training.frames import FrameStore, validate_boxes
from edge.training.pause import CpuContention, PauseGate
from models.registry import ModelRegistry, verify_file
from tests.unit.training.scenes import ebike_scenes

jax = pytest.importorskip("jax", reason="the training extra (estate-edge[train]) is not installed")

from edge.training.graph import DetectorGraph  # noqa: E402
from edge.training.loss import anchor_grid, decode, simota  # noqa: E402
from edge.training.train import Trainer  # noqa: E402

T0 = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.fixture(scope="module")
def base() -> tuple[object, Path]:
    registry = ModelRegistry()
    card = registry.card("yolox_nano")
    return card, registry.resolve(card)


def test_graph_matches_onnxruntime_on_a_real_frame(base: tuple[object, Path], shared_dir: Path) -> None:
    _card, weights = base
    image = cv2.imread(str(shared_dir / "media" / "b2_coco_000000000629.jpg"))
    canvas = np.full((416, 416, 3), 114, np.uint8)
    resized = cv2.resize(image, (416, 278))
    canvas[:278] = resized
    tensor = canvas.transpose(2, 0, 1)[None].astype(np.float32)
    expected = ort.InferenceSession(str(weights), providers=["CPUExecutionProvider"]).run(None, {"images": tensor})[0]
    graph = DetectorGraph.load(weights)
    got = np.asarray(jax.jit(lambda p, x: graph.forward(p, x))(graph.params, tensor))
    assert got.shape == expected.shape == (1, 3549, 85)
    assert float(np.abs(got - expected).max()) < 1e-3
    logits = np.asarray(graph.forward(graph.params, tensor, logits=True))
    assert np.allclose(1 / (1 + np.exp(-logits[..., 4:])), expected[..., 4:], atol=1e-4), "logits mode = pre-sigmoid"


def test_retargeted_export_loads_in_onnxruntime_with_site_classes(base: tuple[object, Path], tmp_path: Path) -> None:
    _card, weights = base
    graph = DetectorGraph.load(weights)
    sources = [3, 1, 3, 2, 7, 0, None, None, None, None]
    graph.retarget_classes(sources)
    assert graph.num_classes == len(SITE_CLASSES)
    out = tmp_path / "site.onnx"
    graph.export_onnx(graph.params, out)
    tensor = np.random.default_rng(0).uniform(0, 255, (1, 3, 416, 416)).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    exported = session.run(None, {"images": tensor})[0]
    original = ort.InferenceSession(str(weights), providers=["CPUExecutionProvider"]).run(None, {"images": tensor})[0]
    assert exported.shape == (1, 3549, 15)
    assert np.allclose(exported[..., :5], original[..., :5], atol=1e-4), "box and objectness untouched"
    assert np.allclose(exported[..., 5 + 0], original[..., 5 + 3], atol=1e-4), "e-bike starts as motorcycle"
    assert np.allclose(exported[..., 5 + 4], original[..., 5 + 7], atol=1e-4), "truck/van starts as truck"
    assert float(exported[..., 5 + 6].mean()) < 0.05, "a new class starts near its small prior"


def test_simota_assigns_anchors_inside_the_object_only() -> None:
    size = 64
    grid = tuple(jax.numpy.asarray(a) for a in anchor_grid(size))
    n = grid[0].shape[0]
    raw = np.zeros((1, n, 5 + 2), np.float32)
    gt = np.asarray([[[16, 16, 48, 48], [0, 0, 1, 1]]], np.float32)
    boxes = decode(jax.numpy.asarray(raw), grid)
    fg, assigned, _iou = simota(jax.numpy.asarray(raw), boxes, jax.numpy.asarray(gt), jax.numpy.asarray([[1, 0]]),
                               jax.numpy.asarray([[True, False]]), grid, 2)
    fg = np.asarray(fg)[0]
    centres_x = (np.asarray(grid[0]) + 0.5) * np.asarray(grid[2])
    centres_y = (np.asarray(grid[1]) + 0.5) * np.asarray(grid[2])
    assert fg.sum() >= 1
    assert np.all((centres_x[fg] > 16) & (centres_x[fg] < 48) & (centres_y[fg] > 16) & (centres_y[fg] < 48))
    assert np.all(np.asarray(assigned)[0][fg] == 0), "the padding box is never assigned"


def _labelled_store(root: Path, shared_dir: Path, count: int) -> FrameStore:
    store = FrameStore(root, 50 << 20)
    for i, scene in enumerate(ebike_scenes(shared_dir, count, seed=11)):
        record = store.add("cam-1", scene.jpeg, reason="zone_occupied", width=scene.width, height=scene.height,
                           ts=T0 + timedelta(seconds=i))
        assert record is not None
        store.save_labels("cam-1", record.frame_id, validate_boxes(scene.boxes, scene.width, scene.height, "t"),
                          user="t")
    return store


def test_training_resumes_from_its_checkpoint_and_exports_a_verified_card(base: tuple[object, Path],
                                                                         shared_dir: Path, tmp_path: Path) -> None:
    card, weights = base
    store = _labelled_store(tmp_path, shared_dir, 6)
    config = TrainingConfig(input_size=64, batch_size=2, epochs=2, holdout_fraction=0.01, frozen_convs=100,
                            checkpoint_every_s=3600)
    first = Trainer(tmp_path, store, config, card, weights).run(max_steps=2)  # type: ignore[arg-type]
    assert first.status == "stopped" and first.steps == 2 and first.card is None
    checkpoint = np.load(tmp_path / "runs" / first.run_id / "checkpoint.npz")
    assert any(k.startswith("m__") for k in checkpoint.files)
    second = Trainer(tmp_path, store, config, card, weights).run()  # type: ignore[arg-type]
    assert second.run_id == first.run_id and second.resumed_from == 2
    assert second.status == "finished" and second.steps == second.total_steps == 6
    assert second.card is not None and second.weights is not None
    verify_file(second.card, second.weights)  # the card's SHA-256 is the file's
    assert second.card.classes == SITE_CLASSES and second.card.roles["hard_negative"]
    assert (tmp_path / "models" / f"{second.card.name}.recipe.json").is_file()
    third = Trainer(tmp_path, store, config, card, weights).run(max_steps=1)  # type: ignore[arg-type]
    assert third.run_id != first.run_id and third.resumed_from == 0, "a finished run is not resumed"


def test_pause_file_holds_training_until_removed(tmp_path: Path) -> None:
    pause_file = tmp_path / "pause"
    pause_file.touch()
    polls = threading.Event()

    def sleep(_: float) -> None:
        polls.set()

    gate = PauseGate(pause_file, 1.0, poll_s=0.01, sleep=sleep)
    remover = threading.Thread(target=lambda: (polls.wait(5), pause_file.unlink()))
    remover.start()
    waited = gate.wait(deadline=float("inf"))
    remover.join()
    assert polls.is_set() and waited >= 0 and gate.last_reason == ""
    clock = iter([0.0, 1.0, 2.0, 3.0])
    pause_file.touch()
    stuck = PauseGate(pause_file, 1.0, sleep=lambda _: None, clock=lambda: next(clock))
    assert stuck.wait(deadline=2.0) >= 2.0 and "pause file" in stuck.last_reason, "gives up at the deadline"
    assert 0.0 <= CpuContention().others() <= 1.0
