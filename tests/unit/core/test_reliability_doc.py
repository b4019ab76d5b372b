"""docs/reliability.md names a test for every fault: each named test file and function must exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "reliability.md"


def _references() -> list[tuple[str, str | None]]:
    refs: list[tuple[str, str | None]] = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        cell = line.rstrip("|").rsplit("|", 1)[-1]
        path = None
        for token in re.findall(r"`([^`]+)`", cell):
            match = re.fullmatch(r"(tests/[\w/]+\.py)?(?:::(\w+))?", token.strip())
            if not match or not (match.group(1) or match.group(2)):
                continue
            path = match.group(1) or path
            if path is not None:
                refs.append((path, match.group(2)))
    return refs


def test_every_test_named_in_the_fault_matrix_exists() -> None:
    refs = _references()
    assert len(refs) > 40
    missing = []
    for path, name in refs:
        file = REPO / path
        if not file.exists():
            missing.append(path)
        elif name is not None and not re.search(rf"def {name}\b", file.read_text(encoding="utf-8")):
            missing.append(f"{path}::{name}")
    assert missing == []


def test_the_matrix_covers_the_faults_issue_10_lists() -> None:
    text = DOC.read_text(encoding="utf-8").lower()
    for fault in ("outage", "5xx", "429", "slow replies", "dropped", "expired", "exception codes", "short frames",
                  "garbage", "power loss", "clock jumps", "disk full", "dead camera", "rollover", "alarm floods"):
        assert fault in text, fault
