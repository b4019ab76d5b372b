"""Estate configuration: pydantic models (one module per section) and the loader.

``load_config(path, secrets_path)`` returns a validated ``EstateConfig`` or raises ``ConfigError``
whose ``problems`` list every error as ``file:line: path: message``.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import ValidationError

from edge.config.estate import EstateConfig
from edge.config.secrets import SecretStore
from edge.config.yaml_loader import LocatedDocument, dotted, load_file
from edge.errors import ConfigError

__all__ = ["EstateConfig", "SecretStore", "json_schema", "load_config", "validate_document"]

_INDEXED_PATH = re.compile(r"^(?P<path>[A-Za-z_]+(?:\[\d+\])?(?:\.[A-Za-z_]+)*):\s")


def _loc_from_dotted(text: str) -> tuple[str | int, ...]:
    loc: list[str | int] = []
    for part in re.finditer(r"([A-Za-z_]+)|\[(\d+)\]", text):
        loc.append(part.group(1) if part.group(1) else int(part.group(2)))
    return tuple(loc)


def _problems(exc: ValidationError, doc: LocatedDocument) -> list[str]:
    out: list[str] = []
    for err in exc.errors(include_url=False, include_input=False):
        # Drop discriminator tags pydantic inserts (e.g. 'synthetic') that are not YAML keys.
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p not in _keys_at(doc, err["loc"], p)))
        msg = err["msg"].removeprefix("Value error, ")
        if not loc and (m := _INDEXED_PATH.match(msg)):
            # Cross-reference errors from the root validator name their own path.
            for piece in msg.split("; "):
                sub = _INDEXED_PATH.match(piece)
                ploc = _loc_from_dotted(sub.group("path")) if sub else ()
                out.append(f"{doc.where(ploc)}: {piece}")
            continue
        if not loc:
            out.extend(f"{doc.where(())}: {piece}" for piece in msg.split("; "))
            continue
        out.append(f"{doc.where(loc)}: {dotted(loc)}: {msg}")
    return out


def _keys_at(doc: LocatedDocument, full: tuple, part: str) -> set[str]:
    """Keys that really exist in the YAML at the level where ``part`` sits (to spot pydantic's tags)."""
    node = doc.data
    for p in full:
        if p == part:
            break
        try:
            node = node[p]
        except (KeyError, IndexError, TypeError):
            return {part}
    return set(node) if isinstance(node, dict) else {part}


def validate_document(doc: LocatedDocument, secrets: SecretStore) -> EstateConfig:
    missing: list[tuple[tuple, str]] = []
    data = secrets.resolve(doc.data, (), missing)
    problems = [
        f"{doc.where(loc)}: {dotted(loc)}: secret {name!r} not found in {secrets.source} "
        f"or ${'EDGE_SECRET_' + name.upper()}"
        for loc, name in missing
    ]
    try:
        config = EstateConfig.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems(exc, doc))
        config = None
    if problems:
        raise ConfigError(f"{doc.source}: {len(problems)} problem(s)", problems)
    assert config is not None
    return config


def load_config(path: Path, secrets_path: Path | None = None) -> EstateConfig:
    """Load and validate an estate config. Secrets come from ``secrets_path`` (mode 0600) or the environment."""
    secrets = SecretStore.from_file(secrets_path)
    return validate_document(load_file(path), secrets)


def json_schema() -> dict:
    schema = EstateConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "estate-edge estate configuration"
    return schema
