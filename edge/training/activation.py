"""Validate a fine-tuned model against the one a camera runs, activate it only if it is better, roll back.

Per camera, on that camera's hold-out labels and for the classes its zones watch
(``edge.training.evaluate``): the candidate is activated only when its mean AP50 beats the current
model's by more than ``training.min_gain``. Both scores are kept in ``<training dir>/activation.json``
with the camera's model history, so the panel can show them and one click puts the previous model
back.

Activating means changing the camera's ``model`` (card and weights folder) in the estate YAML and
reloading the daemon, done by the caller (panel or CLI) with ``model_value``: the config file stays
the single source of truth for what a camera runs, and a model change is audited and backed up like
any other config change. Site cards and weights live in ``<training dir>/models`` (``cards/`` beside
them), never in the repository.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.config.cameras import CameraConfig
from edge.config.training import TrainingConfig
from edge.training.errors import TrainingError
from edge.training.evaluate import Scores, evaluate, watched_site_classes
from edge.training.frames import FrameStore
from models.registry import ModelCard, ModelRegistry


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """What a camera runs: a card name and the folder holding its weights (None: the default folders)."""

    card: str
    dir: str | None
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {"card": self.card, "dir": self.dir, "sha256": self.sha256}


@dataclass(frozen=True, slots=True)
class Comparison:
    camera_id: str
    classes: tuple[str, ...]
    current: Scores
    candidate: Scores
    better: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"camera_id": self.camera_id, "classes": list(self.classes), "current": self.current.as_dict(),
                "candidate": self.candidate.as_dict(), "better": self.better, "reason": self.reason,
                "at": datetime.now(UTC).isoformat()}


def site_registry(root: Path) -> ModelRegistry:
    """A registry that also finds the site's own cards (``<root>/models/cards``) and their weights."""
    return ModelRegistry([Path(root) / "models" / "cards"], models_dir=Path(root) / "models")


def site_cards(root: Path) -> list[ModelCard]:
    """The site's fine-tuned models, newest first."""
    registry = site_registry(root)
    cards_dir = Path(root) / "models" / "cards"
    names = sorted((p.stem for p in cards_dir.glob("*.yaml")), reverse=True) if cards_dir.is_dir() else []
    return [registry.card(n) for n in names]


def current_choice(camera: CameraConfig, registry: ModelRegistry) -> tuple[ModelChoice, ModelCard, Path]:
    card = registry.card(camera.model.card)
    explicit = Path(camera.model.dir) if camera.model.dir else None
    weights = registry.resolve(card, explicit)
    return ModelChoice(card.name, camera.model.dir, card.sha256), card, weights


def model_value(camera: CameraConfig, choice: ModelChoice) -> dict[str, Any]:
    """The camera's new ``model`` mapping for the YAML: its other settings kept, card and folder changed."""
    value = camera.model.model_dump(mode="json", exclude_none=True)
    value["card"] = choice.card
    if choice.dir is None:
        value.pop("dir", None)
    else:
        value["dir"] = choice.dir
    return value


def compare(camera: CameraConfig, candidate: ModelCard, root: Path, frames: FrameStore,
            config: TrainingConfig) -> Comparison:
    """Score the camera's current model and ``candidate`` on the camera's hold-out labels."""
    registry = site_registry(root)
    _choice, current, current_weights = current_choice(camera, registry)
    candidate_weights = registry.resolve(candidate, Path(root) / "models")
    holdout = [r for r in frames.frames(camera.id)
               if r.labelled and r.split(config.holdout_fraction) == "holdout"]
    classes = watched_site_classes(camera, current) | watched_site_classes(camera, candidate)
    missing = sorted({n for z in camera.zones for n in (z.classes or []) if n not in candidate.classes})
    current_scores = evaluate(current, current_weights, frames, holdout, classes)
    candidate_scores = evaluate(candidate, candidate_weights, frames, holdout, classes)
    if missing:
        better, reason = False, (f"camera {camera.id}: its zones name classes {missing} that model "
                                 f"{candidate.name} does not have; change the zones' classes first")
    elif len(holdout) < config.min_holdout_frames:
        better, reason = False, (f"camera {camera.id}: {len(holdout)} labelled hold-out frames, at least "
                                 f"{config.min_holdout_frames} are needed to decide")
    elif candidate_scores.score is None:
        better, reason = False, f"camera {camera.id}: no labelled boxes of the watched classes in the hold-out split"
    else:
        base = current_scores.score or 0.0
        better = candidate_scores.score > base + config.min_gain
        reason = (f"mAP50 {candidate_scores.score:.3f} vs {base:.3f} for {', '.join(sorted(classes))} "
                  f"on {len(holdout)} hold-out frames")
    return Comparison(camera.id, tuple(sorted(classes)), current_scores, candidate_scores, better, reason)


class ModelBook:
    """``activation.json``: per camera, the models it ran before (for rollback) and the last comparisons."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / "activation.json"
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"cameras": {}}
        except (OSError, ValueError) as exc:
            raise TrainingError(f"{self.path}: unreadable activation record: {exc}") from exc
        return data if isinstance(data, dict) and isinstance(data.get("cameras"), dict) else {"cameras": {}}

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(self.path)

    def camera(self, camera_id: str) -> dict[str, Any]:
        with self._lock:
            entry = self._read()["cameras"].get(camera_id) or {}
        return {"history": entry.get("history", []), "comparisons": entry.get("comparisons", []),
                "active": entry.get("active")}

    def record_comparison(self, comparison: Comparison) -> None:
        with self._lock:
            data = self._read()
            entry = data["cameras"].setdefault(comparison.camera_id, {})
            entry["comparisons"] = ([comparison.as_dict(), *entry.get("comparisons", [])])[:10]
            self._write(data)

    def activated(self, camera_id: str, previous: ModelChoice, new: ModelChoice) -> None:
        """Remember that ``new`` replaced ``previous`` on the camera (the newest history entry is undone first)."""
        with self._lock:
            data = self._read()
            entry = data["cameras"].setdefault(camera_id, {})
            entry["history"] = [previous.as_dict(), *entry.get("history", [])]
            entry["active"] = {**new.as_dict(), "at": datetime.now(UTC).isoformat()}
            self._write(data)

    def previous(self, camera_id: str) -> ModelChoice | None:
        history = self.camera(camera_id)["history"]
        if not history:
            return None
        top = history[0]
        return ModelChoice(str(top["card"]), top.get("dir"), str(top["sha256"]))

    def rolled_back(self, camera_id: str) -> None:
        """Drop the history entry that a rollback just restored."""
        with self._lock:
            data = self._read()
            entry = data["cameras"].setdefault(camera_id, {})
            history = entry.get("history", [])
            restored = history[0] if history else None
            entry["history"] = history[1:]
            entry["active"] = {**restored, "at": datetime.now(UTC).isoformat()} if restored else None
            self._write(data)
