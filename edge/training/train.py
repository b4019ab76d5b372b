"""``estate-edge train``: fine-tune the site model on the box's CPU, resumable, bounded, out of the way.

A run starts from a base model (the camera's current card, normally the shipped YOLOX-Nano),
rebuilt as a trainable JAX graph from the ONNX initialisers (``edge.training.graph``); when the base
speaks COCO its class head is retargeted to the site classes, each starting from its closest COCO
class. The optimiser is Adam with linear warm-up and cosine decay, global-norm clipping and decoupled
weight decay; the first ``frozen_convs`` convolutions stay frozen.

Resumability: ``runs/<run id>/checkpoint.npz`` (parameters, Adam moments, step, epoch, position in
the epoch) and ``state.json`` (frames, status, timings) are written atomically every
``checkpoint_every_s`` and when the run stops (deadline, pause past the deadline, Ctrl-C). A new
``estate-edge train`` continues the newest unfinished run from the same base model; the epoch order
is a function of (seed, epoch), so a resumed run sees exactly the batches it would have seen.

When the run ends (all epochs, or the time budget) the weights are written back into the base ONNX
graph as a new model under ``<training dir>/models/`` with its own card (new SHA-256) and recipe.
Activation is a separate, validated step (``edge.training.activation``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from edge.config.training import TrainingConfig
from edge.training.classes import SITE_CLASSES, SITE_ROLES, coco_sources
from edge.training.dataset import load_samples, make_batch
from edge.training.errors import TrainingError
from edge.training.frames import FrameRecord, FrameStore
from edge.training.graph import DetectorGraph, jax, jnp
from edge.training.loss import anchor_grid, yolox_loss
from edge.training.pause import PauseGate
from models.registry import ModelCard, load_card_file

log = logging.getLogger(__name__)

SEED = 20261127
GRAD_CLIP = 10.0
WEIGHT_DECAY = 5e-4
DATA_LICENCE = ("Frames recorded by this estate's own cameras and labelled by its installer; they belong to "
                "the estate and are not to be shared without its consent.")


@dataclass(slots=True)
class RunState:
    run_id: str
    base_card: str
    base_sha256: str
    frames: list[tuple[str, str]]  # (camera id, frame id) of the training split when the run started
    total_steps: int
    status: str = "running"  # running | finished | budget | stopped
    step: int = 0
    seconds: float = 0.0
    paused_s: float = 0.0
    step_seconds: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    model: str | None = None
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "base_card": self.base_card, "base_sha256": self.base_sha256,
                "frames": [list(f) for f in self.frames], "total_steps": self.total_steps, "status": self.status,
                "step": self.step, "seconds": self.seconds, "paused_s": self.paused_s,
                "step_seconds": self.step_seconds[-200:], "losses": self.losses[-500:], "model": self.model,
                "started_at": self.started_at}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RunState:
        return cls(run_id=raw["run_id"], base_card=raw["base_card"], base_sha256=raw["base_sha256"],
                   frames=[(str(a), str(b)) for a, b in raw["frames"]], total_steps=int(raw["total_steps"]),
                   status=raw["status"], step=int(raw["step"]), seconds=float(raw["seconds"]),
                   paused_s=float(raw.get("paused_s", 0.0)), step_seconds=list(raw.get("step_seconds", [])),
                   losses=list(raw.get("losses", [])), model=raw.get("model"), started_at=raw["started_at"])


@dataclass(frozen=True, slots=True)
class TrainResult:
    run_id: str
    status: str
    steps: int
    total_steps: int
    images: int
    seconds: float
    paused_s: float
    s_per_image_epoch: float | None  # mean optimiser-step time / batch size, compile step excluded
    final_loss: float | None
    card: ModelCard | None
    weights: Path | None
    resumed_from: int


def sha256_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(path)


class Trainer:
    """One site's fine-tuning runs, under ``<root>/runs`` with models written to ``<root>/models``."""

    def __init__(self, root: Path, frames: FrameStore, config: TrainingConfig, base_card: ModelCard,
                 base_weights: Path, *, pause: PauseGate | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.root = Path(root)
        self.frames = frames
        self.config = config
        self.base_card = base_card
        self.base_weights = base_weights
        self.pause = pause
        self._clock = clock
        self.runs_dir = self.root / "runs"
        self.models_dir = self.root / "models"

    # ---------------------------------------------------------------------------------------- runs
    def _unfinished(self) -> RunState | None:
        if not self.runs_dir.is_dir():
            return None
        for state_path in sorted(self.runs_dir.glob("*/state.json"), reverse=True):
            try:
                state = RunState.from_json(json.loads(state_path.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if state.status != "finished" and state.base_sha256 == self.base_card.sha256:
                return state
        return None

    def _new_state(self, train_frames: list[FrameRecord]) -> RunState:
        steps_per_epoch = math.ceil(len(train_frames) / self.config.batch_size)
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        return RunState(run_id, self.base_card.name, self.base_card.sha256,
                        [(r.camera_id, r.frame_id) for r in train_frames], steps_per_epoch * self.config.epochs)

    def train_split(self) -> list[FrameRecord]:
        return [r for r in self.frames.frames() if r.labelled and r.split(self.config.holdout_fraction) == "train"]

    # ---------------------------------------------------------------------------------------- model
    def _graph(self) -> DetectorGraph:
        graph = DetectorGraph.load(self.base_weights)
        if graph.num_classes != len(self.base_card.classes):
            raise TrainingError(f"model {self.base_card.name!r}: the card lists {len(self.base_card.classes)} "
                                f"classes, the graph outputs {graph.num_classes}")
        if tuple(self.base_card.classes) != SITE_CLASSES:
            graph.retarget_classes(coco_sources(self.base_card.classes))
        return graph

    # ---------------------------------------------------------------------------------------- training
    def _labelled_records(self, state: RunState) -> list[FrameRecord]:
        """The run's frames that still exist and are still labelled (a deleted frame leaves the run, not fails it)."""
        records = []
        for camera_id, frame_id in state.frames:
            try:
                record = self.frames.get(camera_id, frame_id)
            except KeyError:
                continue  # deleted since the run started: the run goes on without it
            if record.labelled:
                records.append(record)
        if not records:
            raise TrainingError(f"run {state.run_id}: none of its frames is still labelled")
        return records

    def _wait_while_paused(self, deadline: float) -> float:
        """Seconds spent waiting for the pause gate (the box's real work comes first), 0 without one."""
        if self.pause is None:
            return 0.0
        paused = self.pause.wait(deadline)
        if paused > 0.05:
            log.info("training: paused %.0f s (%s)", paused, self.pause.last_reason or "cleared")
        return paused

    def run(self, *, resume: bool = True, max_steps: int | None = None, max_seconds: float | None = None,
            export: bool = True) -> TrainResult:
        """Train until the epochs are done, ``max_steps`` more steps, or the time budget; checkpoint; export."""
        state = self._unfinished() if resume else None
        if state is None:
            train_frames = self.train_split()
            if not train_frames:
                raise TrainingError("no labelled frames in the training split: label some frames first")
            state = self._new_state(train_frames)
        run_dir = self.runs_dir / state.run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        records = self._labelled_records(state)
        size = self.config.input_size
        samples = load_samples(self.frames, records, size)
        graph = self._graph()
        convs = [n for n in graph.nodes if n.op == "Conv"]
        trainable_names = {name for n in convs[self.config.frozen_convs:] for name in n.inputs[1:] if name}
        params = dict(graph.params)
        moments: dict[str, dict[str, Any]] = {}
        checkpoint = run_dir / "checkpoint.npz"
        resumed_from = 0
        if checkpoint.exists():
            params, moments = self._load_checkpoint(checkpoint, params)
            resumed_from = state.step
            log.info("training: resuming run %s at step %d of %d", state.run_id, state.step, state.total_steps)
        trainable = {k: params[k] for k in sorted(trainable_names)}
        frozen = {k: v for k, v in params.items() if k not in trainable_names}
        m = moments.get("m") or {k: jnp.zeros_like(v) for k, v in trainable.items()}
        v = moments.get("v") or {k: jnp.zeros_like(val) for k, val in trainable.items()}
        step_fn = self._step_fn(graph, size)
        batch = self.config.batch_size
        steps_per_epoch = math.ceil(len(samples) / batch)
        total_steps = steps_per_epoch * self.config.epochs
        state.total_steps = total_steps
        budget = self.config.max_hours * 3600.0 if max_seconds is None else max_seconds
        start = self._clock()
        deadline = start + budget
        last_checkpoint = start
        stop_at = state.step + max_steps if max_steps is not None else total_steps
        state.status = "running"
        timed: list[float] = []
        try:
            while state.step < min(stop_at, total_steps):
                state.paused_s += self._wait_while_paused(deadline)
                if self._clock() >= deadline:
                    state.status = "budget"
                    break
                epoch, position = divmod(state.step, steps_per_epoch)
                order = np.random.default_rng([SEED, epoch]).permutation(len(samples))
                picks = [samples[order[(position * batch + i) % len(samples)]] for i in range(batch)]
                rng = np.random.default_rng([SEED, state.step])
                images, gt_boxes, gt_classes, valid = make_batch(picks, rng)
                lr = self._learning_rate(state.step, total_steps)
                t0 = time.perf_counter()
                trainable, m, v, loss = step_fn(trainable, frozen, m, v, state.step + 1, lr,
                                                images, gt_boxes, gt_classes, valid)
                loss_value = float(loss)
                elapsed = time.perf_counter() - t0
                if not math.isfinite(loss_value):
                    raise TrainingError(f"run {state.run_id}: loss became {loss_value} at step {state.step}; "
                                        "lower training.learning_rate")
                if state.step > resumed_from:
                    timed.append(elapsed)
                state.step += 1
                state.losses.append(round(loss_value, 4))
                if self._clock() - last_checkpoint >= self.config.checkpoint_every_s:
                    state.seconds += self._clock() - last_checkpoint
                    last_checkpoint = self._clock()
                    self._save(run_dir, state, {**frozen, **trainable}, m, v)
        except KeyboardInterrupt:
            state.status = "stopped"
            raise
        finally:
            state.seconds += self._clock() - last_checkpoint
            state.step_seconds.extend(round(t, 4) for t in timed)
            if state.step >= total_steps:
                state.status = "finished"
            elif state.status == "running":
                state.status = "stopped"
            self._save(run_dir, state, {**frozen, **trainable}, m, v)
        card: ModelCard | None = None
        weights: Path | None = None
        if export and state.status in ("finished", "budget"):
            card, weights = self.export(graph, {**frozen, **trainable}, state, len(samples))
            state.model = card.name
            _write_json(run_dir / "state.json", state.to_json())
        per_image = (sum(timed) / len(timed) / batch) if timed else None
        return TrainResult(state.run_id, state.status, state.step, total_steps, len(samples),
                           self._clock() - start, state.paused_s, per_image,
                           state.losses[-1] if state.losses else None, card, weights, resumed_from)

    def _learning_rate(self, step: int, total: int) -> float:
        warmup = max(1, min(100, total // 10))
        base = self.config.learning_rate
        if step < warmup:
            return base * (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))

    def _step_fn(self, graph: DetectorGraph, size: int) -> Callable[..., Any]:
        grid_x, grid_y, strides = anchor_grid(size, tuple(self.base_card.output.strides))
        grid = (jnp.asarray(grid_x), jnp.asarray(grid_y), jnp.asarray(strides))
        num_classes = graph.num_classes

        def loss_fn(trainable: dict[str, Any], frozen: dict[str, Any], images: Any, gt_boxes: Any,
                    gt_classes: Any, valid: Any) -> Any:
            raw = graph.forward({**frozen, **trainable}, images, logits=True)
            return yolox_loss(raw, gt_boxes, gt_classes, valid, grid, num_classes)

        def step(trainable: dict[str, Any], frozen: dict[str, Any], m: dict[str, Any], v: dict[str, Any],
                 t: Any, lr: Any, images: Any, gt_boxes: Any, gt_classes: Any, valid: Any) -> Any:
            (loss, _parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                trainable, frozen, images, gt_boxes, gt_classes, valid)
            norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree_util.tree_leaves(grads)))
            scale = jnp.minimum(1.0, GRAD_CLIP / (norm + 1e-6))
            b1, b2, eps = 0.9, 0.999, 1e-8
            new_t, new_m, new_v = {}, {}, {}
            for key, param in trainable.items():
                g = grads[key] * scale
                mk = b1 * m[key] + (1 - b1) * g
                vk = b2 * v[key] + (1 - b2) * g * g
                update = (mk / (1 - b1**t)) / (jnp.sqrt(vk / (1 - b2**t)) + eps)
                decay = WEIGHT_DECAY * param if param.ndim > 1 else 0.0
                new_t[key] = param - lr * (update + decay)
                new_m[key] = mk
                new_v[key] = vk
            return new_t, new_m, new_v, loss

        return jax.jit(step)

    # ---------------------------------------------------------------------------------------- checkpoints
    def _save(self, run_dir: Path, state: RunState, params: dict[str, Any], m: dict[str, Any],
              v: dict[str, Any]) -> None:
        arrays: dict[str, np.ndarray] = {f"p__{k}": np.asarray(val) for k, val in params.items()}
        arrays.update({f"m__{k}": np.asarray(val) for k, val in m.items()})
        arrays.update({f"v__{k}": np.asarray(val) for k, val in v.items()})
        tmp = run_dir / ".checkpoint.tmp.npz"
        np.savez(tmp, allow_pickle=False, **arrays)  # float arrays only: nothing to pickle
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(run_dir / "checkpoint.npz")
        _write_json(run_dir / "state.json", state.to_json())

    @staticmethod
    def _load_checkpoint(path: Path, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        try:
            data = np.load(path)
        except (OSError, ValueError) as exc:
            raise TrainingError(f"{path}: unreadable checkpoint: {exc}") from exc
        loaded = dict(params)
        moments: dict[str, dict[str, Any]] = {"m": {}, "v": {}}
        for key in data.files:
            kind, name = key.split("__", 1)
            if kind == "p":
                if name not in params or params[name].shape != data[key].shape:
                    raise TrainingError(f"{path}: parameter {name} does not fit this model; delete the run folder")
                loaded[name] = jnp.asarray(data[key])
            else:
                moments[kind][name] = jnp.asarray(data[key])
        return loaded, moments

    # ---------------------------------------------------------------------------------------- export
    def export(self, graph: DetectorGraph, params: dict[str, Any], state: RunState,
               images: int) -> tuple[ModelCard, Path]:
        """Write the ONNX, its card (new SHA-256) and its recipe; returns (card, weights path)."""
        name = f"site-{state.run_id.lower()}-s{state.step}"
        weights = self.models_dir / f"{name}.onnx"
        graph.export_onnx(params, weights)
        digest = sha256_file(weights)
        base = self.base_card
        card_doc = {
            "name": name,
            "description": f"{base.name} fine-tuned on this estate's own frames ({images} images, "
                           f"{state.step} steps at {self.config.input_size} px), site classes.",
            "file": weights.name,
            "sha256": digest,
            "size_bytes": weights.stat().st_size,
            "licence": f"{base.licence} (weights derived from {base.name}); data: the estate's own",
            "source": f"estate-edge train, run {state.run_id}, from {base.name} sha256 {base.sha256}",
            "input": base.input.model_dump(mode="json"),
            "output": base.output.model_dump(mode="json"),
            "score_threshold": base.score_threshold,
            "nms_iou": base.nms_iou,
            "classes": list(SITE_CLASSES),
            "roles": {k: list(v) for k, v in SITE_ROLES.items()},
        }
        cards_dir = self.models_dir / "cards"
        cards_dir.mkdir(parents=True, exist_ok=True)
        card_path = cards_dir / f"{name}.yaml"
        card_path.write_text("# Written by estate-edge train; the SHA-256 is the weights file's.\n"
                             + yaml.safe_dump(card_doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
        recipe = {
            "model": name, "base_card": base.name, "base_sha256": base.sha256, "run": state.to_json(),
            "config": self.config.model_dump(mode="json"), "images": images, "classes": list(SITE_CLASSES),
            "optimiser": {"kind": "adam", "grad_clip": GRAD_CLIP, "weight_decay": WEIGHT_DECAY, "seed": SEED},
            "augmentation": ["horizontal flip p=0.5", "brightness/contrast jitter"],
            "data_licence": DATA_LICENCE,
        }
        _write_json(self.models_dir / f"{name}.recipe.json", recipe)
        return load_card_file(card_path), weights
