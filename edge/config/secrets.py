"""Secrets: a separate YAML map of name -> value, mode 0600, or ``EDGE_SECRET_<NAME>`` variables.

Why a separate file: the estate config is shown in the panel, downloaded by installers and kept
in version control; secrets must be none of those. The file must not be readable by group or
others (we refuse to start otherwise and say which mode we found), and values are wrapped in
pydantic ``SecretStr`` as soon as they are resolved so that no repr, log line or error message
can print them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from edge.config.yaml_loader import SecretRef
from edge.errors import ConfigError, SecretsPermissionError

ENV_PREFIX = "EDGE_SECRET_"


class SecretStore:
    """Looks a secret up in the environment first (for containers and systemd credentials), then the file."""

    def __init__(self, values: Mapping[str, str] | None = None, source: str = "(none)") -> None:
        self._values = dict(values or {})
        self.source = source

    @classmethod
    def from_file(cls, path: Path | None) -> SecretStore:
        if path is None:
            return cls()
        try:
            st = path.stat()
        except FileNotFoundError as exc:
            raise ConfigError(f"secrets file {path} does not exist") from exc
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise SecretsPermissionError(
                f"secrets file {path} has mode {mode:04o}; it must be readable by its owner only. "
                f"Fix it with: chmod 600 {path}"
            )
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError:
            # Never echo the file's content: it is full of secrets.
            raise ConfigError(f"secrets file {path} is not valid YAML (content not shown)") from None
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            raise ConfigError(f"secrets file {path} must be a mapping of name: value")
        return cls({k: str(v) for k, v in data.items()}, source=str(path))

    def get(self, name: str) -> SecretStr | None:
        env = os.environ.get(ENV_PREFIX + name.upper().replace("-", "_").replace(".", "_"))
        if env is not None:
            return SecretStr(env)
        value = self._values.get(name)
        return SecretStr(value) if value is not None else None

    def resolve(self, data: Any, path: tuple[str | int, ...] = (),
                missing: list[tuple[tuple[str | int, ...], str]] | None = None) -> Any:
        """Replace every ``SecretRef`` in ``data`` with its ``SecretStr``; collect the missing ones."""
        if missing is None:
            missing = []
        if isinstance(data, SecretRef):
            value = self.get(data.name)
            if value is None:
                missing.append((path, data.name))
            return value
        if isinstance(data, dict):
            return {k: self.resolve(v, (*path, k), missing) for k, v in data.items()}
        if isinstance(data, list):
            return [self.resolve(v, (*path, i), missing) for i, v in enumerate(data)]
        return data
