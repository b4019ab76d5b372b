"""The import layers (pyproject.toml [tool.importlinter]) cover every module and hold.

A module named in no layer is not checked at all, so a new top-level module of ``edge/`` that
nobody placed would slip past the contracts; this test names it. The contracts themselves run
through import-linter's own entry point, as ``./scripts/test`` runs them.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _layers() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [contract] = [c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "layers"]
    return [[m.strip() for m in layer.split(":")] for layer in contract["layers"]]


def test_every_top_level_module_of_edge_is_in_exactly_one_layer() -> None:
    named = [m for layer in _layers() for m in layer]
    modules = {f"edge.{p.stem}" for p in (ROOT / "edge").glob("*.py") if p.stem != "__init__"}
    modules |= {f"edge.{p.parent.name}" for p in (ROOT / "edge").glob("*/__init__.py")}
    assert sorted(modules - set(named)) == [], "place these in one layer of pyproject.toml [tool.importlinter]"
    assert sorted(m for m in set(named) if named.count(m) > 1) == []
    assert sorted(m for m in named if m.startswith("edge.") and m not in modules) == []  # no stale names


def test_the_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout
