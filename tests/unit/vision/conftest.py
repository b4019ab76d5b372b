"""Fixtures for the vision unit tests: the real model (via EDGE_MODELS_DIR, set by tests/conftest.py)."""

from __future__ import annotations

import pytest

from edge.vision.detector import Detector, shared_detector
from models.registry import ModelRegistry


@pytest.fixture(scope="session")
def detector() -> Detector:
    return shared_detector(ModelRegistry(), "yolox_nano")
