"""The estate config file as the installer tools see it: check, replace (validated, backed up), list backups.

Saving is the one place the panel writes the config, whether from an upload or the zone editor:

1. the new text is validated exactly as the daemon will load it (``validate_document`` with the
   real secrets, then the files it names, as ``estate-edge run`` checks them: CA bundles, TLS
   pairs, camera models), so a save can never leave a config the daemon refuses;
2. the current file is copied to ``<name>.bak-<UTC time>`` beside it (the ``keep`` newest kept);
3. the new text is written to a temporary file, fsynced and renamed over the config (atomic: a
   power cut leaves either the old or the new file, never half of one);
4. the caller then asks the daemon to reload.

Problems are returned per line (``CheckedLine``) so the page can show each error under the line it
names, as the installer sees the file.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from edge.config import EstateConfig, SecretStore, validate_document
from edge.config.files_check import file_errors
from edge.config.yaml_loader import load_located
from edge.errors import ConfigError
from edge.fileio import write_durably

_BACKUP_RE = re.compile(r"\.bak-\d{8}T\d{6}(?:\d{6})?Z$")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """``problems``: (line or None, message) in file order; ``config`` when valid."""

    ok: bool
    problems: tuple[tuple[int | None, str], ...]
    config: EstateConfig | None = None

    def by_line(self) -> dict[int | None, list[str]]:
        out: dict[int | None, list[str]] = {}
        for line, message in self.problems:
            out.setdefault(line, []).append(message)
        return out


@dataclass(frozen=True, slots=True)
class SaveResult:
    backup: Path | None
    config: EstateConfig
    removed_backups: tuple[Path, ...] = field(default_factory=tuple)


def split_problem(problem: str, source: str) -> tuple[int | None, str]:
    """``'<source>:12: devices[0].bus: no bus ...'`` -> ``(12, 'devices[0].bus: no bus ...')``."""
    prefix = source + ":"
    if not problem.startswith(prefix):
        return None, problem
    rest = problem[len(prefix):]
    head, sep, message = rest.partition(": ")
    if sep and head.isdigit():
        return int(head), message
    return None, rest.strip()


class ConfigNotWritable(ConfigError):
    """The new config was valid but could not be written (read-only folder, disk full): nothing changed.

    Under the packaged unit the config folder is writable (``ReadWritePaths=/etc/estate-edge``); a unit
    or container that makes it read-only gets this one-line reason instead of a bare ``OSError``.
    """

    def __init__(self, path: Path, exc: OSError) -> None:
        where = exc.filename or path.parent
        reason = f"cannot save {path}: {exc.strerror or exc} ({where}); the running config is unchanged"
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            reason += (f". The gateway needs write access to {path.parent} (it writes the new file and a backup "
                       "there); under systemd: ReadWritePaths=" + str(path.parent))
        super().__init__(reason, [reason])


class ConfigFiles:
    def __init__(self, path: Path, secrets_path: Path | None, *, keep: int = 20) -> None:
        self.path = Path(path)
        self.secrets_path = Path(secrets_path) if secrets_path else None
        self.keep = keep
        self._lock = asyncio.Lock()
        self._cached: tuple[tuple[object, object], str, CheckResult] | None = None

    def read_text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def check_text(self, text: str, source: str | None = None) -> CheckResult:
        """Validate ``text`` as the daemon would (YAML, schema, references, secrets, referenced files).

        Never raises ConfigError.
        """
        source = source or self.path.name
        try:
            secrets = SecretStore.from_file(self.secrets_path)
            doc = load_located(text, source)
            config = validate_document(doc, secrets)
            errors = file_errors(doc, config, self.path.resolve().parent)
            if errors:
                raise ConfigError(f"{source}: {len(errors)} problem(s)", errors)
        except ConfigError as exc:
            problems = tuple(split_problem(p, source) for p in exc.problems)
            return CheckResult(False, tuple(sorted(problems, key=lambda p: (p[0] is None, p[0] or 0))))
        except yaml.YAMLError as exc:
            # The loader names lines for syntax errors; the reader's own errors (control characters,
            # bad encoding) come without a mark, so the line is counted here from the character offset.
            position = getattr(exc, "position", None)
            line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
            return CheckResult(False, ((line, f"YAML: {exc}".splitlines()[0]),))
        return CheckResult(True, (), config)

    def check_current(self) -> tuple[str, CheckResult]:
        """Check the file on disk.

        The result is reused while neither the file nor the secrets file changed (parsing a 2,000-device
        config takes about a second; the tools page must not pay it per view).
        """
        try:
            stamp = (_stamp(self.path), _stamp(self.secrets_path) if self.secrets_path else None)
            if self._cached is not None and self._cached[0] == stamp:
                return self._cached[1], self._cached[2]
            text = self.read_text()
        except OSError as exc:
            return "", CheckResult(False, ((None, f"cannot read {self.path}: {exc.strerror}"),))
        result = self.check_text(text)
        self._cached = (stamp, text, result)
        return text, result

    async def save(self, text: str) -> SaveResult:
        """Validate, back up the current file, atomically replace it. Raises ``ConfigError`` when invalid."""
        async with self._lock:
            result = self.check_text(text)
            if not result.ok or result.config is None:
                raise ConfigError(
                    f"{self.path.name}: {len(result.problems)} problem(s)",
                    [f"{self.path.name}:{line}: {msg}" if line else msg for line, msg in result.problems],
                )
            try:
                backup, removed = await asyncio.to_thread(self._replace, text)
            except OSError as exc:
                raise ConfigNotWritable(self.path, exc) from exc
            return SaveResult(backup, result.config, removed)

    def _replace(self, text: str) -> tuple[Path | None, tuple[Path, ...]]:
        backup = None
        if self.path.exists():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            backup = self.path.with_name(f"{self.path.name}.bak-{stamp}")
            data = self.path.read_bytes()
            write_durably(backup, data, mode=self.path.stat().st_mode & 0o777)
        write_durably(self.path, text.encode("utf-8"),
                       mode=(self.path.stat().st_mode & 0o777) if self.path.exists() else 0o644)
        return backup, self._prune()

    def backups(self) -> list[Path]:
        """Newest first."""
        if not self.path.parent.is_dir():
            return []
        found = [p for p in self.path.parent.iterdir()
                 if p.name.startswith(self.path.name + ".bak-") and _BACKUP_RE.search(p.name)]
        return sorted(found, key=lambda p: p.name, reverse=True)

    def _prune(self) -> tuple[Path, ...]:
        old = self.backups()[self.keep:]
        for path in old:
            path.unlink(missing_ok=True)
        return tuple(old)


def _stamp(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino)
