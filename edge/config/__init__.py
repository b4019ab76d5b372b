"""Estate configuration: pydantic models (one module per section) and the loader.

``load_config(path, secrets_path)`` returns a validated ``EstateConfig`` or raises ``ConfigError``
whose ``problems`` list every error as ``file:line: path: message``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge.config.estate import EstateConfig, raw_reference_problems
from edge.config.secrets import SecretStore
from edge.config.unknown_keys import unknown_key_message
from edge.config.yaml_loader import LocatedDocument, dotted, load_file
from edge.errors import ConfigError

__all__ = ["EstateConfig", "SecretStore", "json_schema", "load_config", "resolve_paths", "secret_values", "validate_document"]

_INDEXED_PATH = re.compile(r"^(?P<path>[A-Za-z_]+(?:\[\d+\])?(?:\.[A-Za-z_]+)*):\s")

Loc = tuple[str | int, ...]  # a YAML path: keys and list indices


def _loc_from_dotted(text: str) -> Loc:
    loc: list[str | int] = []
    for part in re.finditer(r"([A-Za-z_]+)|\[(\d+)\]", text):
        loc.append(part.group(1) if part.group(1) else int(part.group(2)))
    return tuple(loc)


Located = tuple[Loc, str]  # (YAML path, message that names it)


def _problems(exc: ValidationError, doc: LocatedDocument) -> list[Located]:
    out: list[Located] = []
    for err in exc.errors(include_url=False, include_input=False):
        # Drop discriminator tags pydantic inserts (e.g. 'synthetic') that are not YAML keys.
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p not in _keys_at(doc, err["loc"], p)))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = unknown_key_message(EstateConfig, tuple(err["loc"]))
        if not loc:
            # Cross-reference errors from the root validator name their own path.
            out.extend(_references(msg.split("; ")))
            continue
        out.append((loc, f"{dotted(loc)}: {msg}"))
    return out


def _references(messages: list[str]) -> list[Located]:
    """Reference problems, located by the path each message starts with."""
    out: list[Located] = []
    for message in messages:
        match = _INDEXED_PATH.match(message)
        out.append((_loc_from_dotted(match.group("path")) if match else (), message))
    return out


def _keys_at(doc: LocatedDocument, full: Loc, part: str) -> set[str]:
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
    missing: list[tuple[Loc, str]] = []
    data = secrets.resolve(doc.data, (), missing)
    problems: list[Located] = [
        (loc, f"{dotted(loc)}: secret {name!r} not found in {secrets.source} or ${'EDGE_SECRET_' + name.upper()}")
        for loc, name in missing
    ]
    try:
        config = EstateConfig.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems(exc, doc))
        # The root validator (references between sections) only runs once every field is valid;
        # run its checks on the raw document too, so one pass lists every problem.
        problems.extend(_references(raw_reference_problems(data)))
        config = None
    if problems:
        problems.sort(key=lambda problem: doc.line_of(problem[0]) or 0)  # in file order
        # The root validator and the raw-document pass can both find one reference problem: list it once.
        listed = list(dict.fromkeys(f"{doc.where(loc)}: {message}" for loc, message in problems))
        raise ConfigError(f"{doc.source}: {len(listed)} problem(s)", listed)
    assert config is not None
    return config


def load_config(path: Path, secrets_path: Path | None = None) -> EstateConfig:
    """Load and validate an estate config. Secrets come from ``secrets_path`` (mode 0600) or the environment.

    Relative file paths inside the config are relative to the config file's own folder, so an
    estate's folder can be moved or copied as a whole.
    """
    secrets = SecretStore.from_file(secrets_path)
    config = validate_document(load_file(path), secrets)
    return resolve_paths(config, path.resolve().parent)


def resolve_paths(config: EstateConfig, base: Path) -> EstateConfig:
    """Every relative ``Path`` in the config made relative to ``base`` (the config file's folder).

    Walks the models rather than listing fields, so a section that adds a file (a TLS key, a CA
    bundle) is resolved the same way without being named here.
    """
    resolved = _resolved(config, base)
    assert isinstance(resolved, EstateConfig)  # a model is only ever replaced by its own model_copy
    return resolved


def _resolved(model: object, base: Path) -> object:
    from pydantic import BaseModel

    if isinstance(model, Path):
        return model if model.is_absolute() else (base / model).resolve()
    if isinstance(model, BaseModel):
        update: dict[str, object] = {}
        for name in type(model).model_fields:
            value = getattr(model, name)
            new = _resolved(value, base)
            if new is not value:
                update[name] = new
        return model.model_copy(update=update) if update else model
    if isinstance(model, list):
        items = [_resolved(item, base) for item in model]
        return items if any(a is not b for a, b in zip(items, model, strict=True)) else model
    if isinstance(model, dict):
        values = {key: _resolved(item, base) for key, item in model.items()}
        return values if any(values[k] is not model[k] for k in model) else model
    return model


def secret_values(model: object) -> list[str]:
    """Every secret value inside a config (to register with the log redaction filter)."""
    from pydantic import BaseModel, SecretStr

    out: list[str] = []
    if isinstance(model, SecretStr):
        out.append(model.get_secret_value())
    elif isinstance(model, BaseModel):
        for name in type(model).model_fields:
            out.extend(secret_values(getattr(model, name)))
    elif isinstance(model, list | tuple):
        for item in model:
            out.extend(secret_values(item))
    elif isinstance(model, dict):
        for item in model.values():
            out.extend(secret_values(item))
    return out


def json_schema() -> dict[str, Any]:
    schema = EstateConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "estate-edge estate configuration"
    return schema
