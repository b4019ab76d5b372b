"""Errors of the training stage, under the project's ``EdgeError`` tree."""

from __future__ import annotations

from edge.errors import EdgeError


class TrainingError(EdgeError):
    """Training cannot go on: a missing extra, an unreadable model, a bad label or an unusable dataset."""
