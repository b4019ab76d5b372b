"""Scores and the activation record: AP on known hits, watched classes per zone, history for rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config.cameras import CameraConfig
from edge.training.activation import Comparison, ModelBook, ModelChoice, model_value
from edge.training.errors import TrainingError
from edge.training.evaluate import ClassScore, Scores, average_precision, watched_site_classes
from models.registry import ModelRegistry

CAMERA = {"id": "cam-1", "name": "x", "location": {"building": "1栋"}, "host": "127.0.0.1",
          "model": {"card": "yolox_nano", "intra_op_threads": 2},
          "zones": [{"id": "lane", "kind": "fire_lane", "polygon": [[0, 0], [10, 0], [10, 10]]},
                    {"id": "door", "kind": "ebike_entry", "polygon": [[0, 0], [10, 0], [10, 10]],
                     "bicycles_are_ebikes": True}]}


def test_average_precision_on_known_rankings() -> None:
    assert average_precision([(0.9, True), (0.8, True)], 2) == pytest.approx(1.0)
    assert average_precision([(0.9, False), (0.8, True)], 1) == pytest.approx(0.5)
    assert average_precision([(0.9, True)], 2) == pytest.approx(0.5), "half the objects never found"
    assert average_precision([], 3) == 0.0
    assert average_precision([(0.5, False)], 0) == 0.0


def test_watched_classes_follow_the_zones_and_the_card() -> None:
    camera = CameraConfig.model_validate(CAMERA)
    card = ModelRegistry().card("yolox_nano")
    watched = watched_site_classes(camera, card)
    assert {"car", "truck_van", "ebike", "bicycle"} <= watched
    assert "person" not in watched and "stroller" not in watched
    explicit = CameraConfig.model_validate({**CAMERA, "zones": [{**CAMERA["zones"][0], "classes": ["car"]}]})
    assert watched_site_classes(explicit, card) == {"car"}


def test_model_value_keeps_the_cameras_other_model_settings() -> None:
    camera = CameraConfig.model_validate(CAMERA)
    value = model_value(camera, ModelChoice("site-x", "/var/lib/estate-edge/training/models", "a" * 64))
    assert value["card"] == "site-x" and value["dir"] == "/var/lib/estate-edge/training/models"
    assert value["intra_op_threads"] == 2
    assert "dir" not in model_value(camera, ModelChoice("yolox_nano", None, "b" * 64))


def test_book_keeps_history_for_rollback_and_the_last_scores(tmp_path: Path) -> None:
    book = ModelBook(tmp_path)
    assert book.previous("cam-1") is None
    scores = Scores("m", "c" * 64, 3, {"car": ClassScore(0.5, 0.5, 1.0, 2)})
    assert scores.score == 0.5
    book.record_comparison(Comparison("cam-1", ("car",), scores, scores, False, "equal"))
    base = ModelChoice("yolox_nano", None, "a" * 64)
    first = ModelChoice("site-1", "/m", "b" * 64)
    second = ModelChoice("site-2", "/m", "c" * 64)
    book.activated("cam-1", base, first)
    book.activated("cam-1", first, second)
    assert ModelBook(tmp_path).previous("cam-1") == first
    book.rolled_back("cam-1")
    assert book.previous("cam-1") == base and book.camera("cam-1")["active"]["card"] == "site-1"
    book.rolled_back("cam-1")
    assert book.previous("cam-1") is None
    assert book.camera("cam-1")["comparisons"][0]["reason"] == "equal"
    (tmp_path / "activation.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(TrainingError, match=r"activation\.json"):
        book.camera("cam-1")
