"""YAML loading that remembers where every value came from, and resolves ``!secret`` tags.

Installers edit YAML by hand, so every validation error must point at a file and a line.
We compose PyYAML's node tree (which carries marks) into plain Python data and, alongside it,
a map from each value's path (a tuple of keys and list indexes, exactly pydantic's ``loc``)
to its 1-based line number.

``!secret name`` (as in Home Assistant) stands for a secret looked up in the secrets store, so the
config file itself can be shared, versioned and shown in the panel without leaking anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edge.errors import ConfigError

PathKey = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class SecretRef:
    """Placeholder for ``!secret name`` until the secrets are resolved."""

    name: str


class _Loader(yaml.SafeLoader):
    """SafeLoader plus the ``!secret`` tag; no arbitrary Python objects, ever."""


def _secret_constructor(loader: yaml.SafeLoader, node: yaml.Node) -> SecretRef:
    if not isinstance(node, yaml.ScalarNode):  # `!secret [a, b]`: name the line instead of a constructor crash
        raise yaml.constructor.ConstructorError(None, None, "!secret takes one secret name", node.start_mark)
    return SecretRef(str(loader.construct_scalar(node)))


_Loader.add_constructor("!secret", _secret_constructor)


@dataclass(slots=True)
class LocatedDocument:
    data: Any
    lines: dict[PathKey, int]
    source: str

    def line_of(self, loc: PathKey) -> int | None:
        """Line of the deepest known ancestor of ``loc`` (pydantic may point inside a value)."""
        probe = tuple(loc)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), None)

    def where(self, loc: PathKey) -> str:
        line = self.line_of(loc)
        return f"{self.source}:{line}" if line else self.source


def _build(loader: _Loader, node: yaml.Node, path: PathKey, lines: dict[PathKey, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in result:
                raise ConfigError(
                    f"duplicate key {key!r}",
                    [f"{loader.name}:{key_node.start_mark.line + 1}: {_dotted((*path, key))}: duplicate key"],
                )
            result[key] = _build(loader, value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), lines) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _dotted(loc: PathKey) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def dotted(loc: PathKey) -> str:
    """``('devices', 3, 'unit_id')`` -> ``devices[3].unit_id`` as installers read it."""
    return _dotted(loc)


def load_located(text: str, source: str) -> LocatedDocument:
    """Parse ``text``; raise ``ConfigError`` naming the line on a YAML syntax error."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        loader.name = source
        node = loader.get_single_node()
        lines: dict[PathKey, int] = {}
        data = {} if node is None else _build(loader, node, (), lines)
    except yaml.reader.ReaderError as exc:  # control characters, bad encoding: not a MarkedYAMLError
        line = text[: exc.position].count("\n") + 1 if isinstance(exc.position, int) else "?"
        problem = f"{source}:{line}: unreadable character {exc.character!r} ({exc.reason})"
        raise ConfigError(problem, [problem]) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else "?"
        raise ConfigError(f"{source}:{line}: YAML syntax error: {exc.problem}",
                          [f"{source}:{line}: YAML syntax error: {exc.problem}"]) from exc
    finally:
        if loader is not None:
            loader.dispose()
    return LocatedDocument(data=data, lines=lines, source=source)


def load_file(path: Path) -> LocatedDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return load_located(text, str(path))
