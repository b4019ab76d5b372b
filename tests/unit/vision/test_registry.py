"""Model cards: the packaged card, SHA-256 refusal, missing files, and a second card dropped in."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edge.errors import ConfigError
from edge.vision.detector import Detector
from models.registry import (
    MODELS_DIR_ENV,
    PACKAGED_CARDS_DIR,
    ModelCardError,
    ModelFileMissing,
    ModelIntegrityError,
    ModelRegistry,
)


def test_packaged_card_resolves_through_env(shared_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODELS_DIR_ENV, str(shared_dir / "models"))
    registry = ModelRegistry()
    card = registry.card("yolox_nano")
    assert card.input.width == 416 and card.input.colour_order == "bgr"
    assert card.classes[2] == "car" and card.classes[3] == "motorcycle" and len(card.classes) == 80
    assert registry.resolve(card) == shared_dir / "models" / "yolox_nano.onnx"


def test_sha_mismatch_is_refused(tmp_path: Path, shared_dir: Path) -> None:
    registry = ModelRegistry(models_dir=tmp_path)
    card = registry.card("yolox_nano")
    # Same size, one byte changed: only the hash can tell.
    data = bytearray((shared_dir / "models" / "yolox_nano.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "yolox_nano.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"SHA-256 .* refusing"):
        registry.resolve(card)


def test_truncated_file_is_refused(tmp_path: Path, shared_dir: Path) -> None:
    registry = ModelRegistry(models_dir=tmp_path)
    (tmp_path / "yolox_nano.onnx").write_bytes((shared_dir / "models" / "yolox_nano.onnx").read_bytes()[:1000])
    with pytest.raises(ModelIntegrityError, match="1000 bytes"):
        registry.resolve(registry.card("yolox_nano"))


def test_missing_file_names_the_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path / "nowhere"))
    registry = ModelRegistry()
    with pytest.raises(ModelFileMissing, match="nowhere"):
        registry.resolve(registry.card("yolox_nano"))


def test_unknown_card_lists_known_ones() -> None:
    with pytest.raises(ModelCardError, match=r"known: .*yolox_nano"):
        ModelRegistry().card("no_such_model")


def test_invalid_card_names_file_and_field(tmp_path: Path) -> None:
    raw = yaml.safe_load((PACKAGED_CARDS_DIR / "yolox_nano.yaml").read_text())
    raw["name"] = "broken"
    raw["sha256"] = "not-a-hash"
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ModelCardError) as info:
        ModelRegistry(cards_dirs=[tmp_path]).card("broken")
    assert any("broken.yaml: sha256" in p for p in info.value.problems)


def test_second_model_needs_only_a_card(tmp_path: Path, shared_dir: Path) -> None:
    """A 'fine-tuned e-bike detector' is a new card with its own class map: no code changes.

    (It reuses the YOLOX-Nano weights, so its third class is renamed; the point is that names,
    roles and thresholds come from the card.)
    """
    raw = yaml.safe_load((PACKAGED_CARDS_DIR / "yolox_nano.yaml").read_text())
    raw["name"] = "ebike_finetune"
    classes = list(raw["classes"])
    classes[3] = "e-bike"
    raw["classes"] = classes
    raw["roles"] = {"vehicle": ["car", "truck", "bus"], "ebike": ["e-bike"]}
    raw["score_threshold"] = 0.5
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "ebike_finetune.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(shared_dir / "models" / "yolox_nano.onnx", models / "yolox_nano.onnx")
    registry = ModelRegistry(cards_dirs=[cards], models_dir=models)
    assert "ebike_finetune" in registry.card_names()
    card = registry.card("ebike_finetune")
    detector = Detector(card, registry.resolve(card))
    image = cv2.imread(str(shared_dir / "media" / "b2_coco_000000000629.jpg"))
    detections, _ = detector.detect(image)
    labels = [b.label for b in detections.to_boxes()]
    assert labels == ["e-bike"]
    assert detector.score_threshold == 0.5
    assert card.class_ids(["e-bike"]) == (3,)
    with pytest.raises(ConfigError, match="class 'motorcycle' is not in model 'ebike_finetune'"):
        card.class_ids(["motorcycle"], where="cameras[x]")
    assert np.all(detections.scores >= 0.5)


def test_unavailable_execution_provider_is_a_config_error(shared_dir: Path) -> None:
    registry = ModelRegistry(models_dir=shared_dir / "models")
    card = registry.card("yolox_nano")
    with pytest.raises(ConfigError, match="TensorrtExecutionProvider"):
        Detector(card, registry.resolve(card), providers=("TensorrtExecutionProvider",))
