"""What ``estate-edge check`` verifies beyond the schema: the files a config points at, and poll timing.

The pydantic models do no I/O (house style), so a config whose ``platform.ca_bundle`` names a file
that is not there validated, and ``run`` then died on it with a raw ``FileNotFoundError``. This
module looks at the file system the way ``run`` will, and names the config line of each problem:

errors (``run`` would fail, or run without what was asked for):
  - every input file a config field names (any ``Path`` field: CA bundles, TLS certificates and
    keys, whatever a later section adds) exists, is a file and is readable;
  - CA bundles contain PEM certificates, and each certificate + key pair loads as a pair;
  - every enabled camera's model card exists, its weights file is found and matches the card's
    size and SHA-256, and the class names its zones and analytics name are in the card;
  - an extra profiles folder (``profiles_dir``) is a folder.
warnings (``run`` works, but not as the installer expects):
  - the store's file and evidence folder cannot be created by this user (``check`` may run as
    another user than the service);
  - on a shared line (an RS-485 bus, or a TCP converter taking one connection), a device whose
    worst case ``timeout_s × (retries + 1)`` exceeds its poll period: while it is silent it holds
    the line longer than that, so its own polls are skipped and every other device there waits.

``check_config`` returns every problem at once (schema problems first, as ``load_config`` raises
them), each as ``file:line: path: message``.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from edge.config import EstateConfig, resolve_paths, validate_document
from edge.config.device_options import ModbusTcpDeviceOptions
from edge.config.secrets import SecretStore
from edge.config.yaml_loader import LocatedDocument, dotted, load_file
from edge.errors import ConfigError

Loc = tuple[str | int, ...]

# Where the gateway writes (created at start), as opposed to files it reads.
WRITTEN_PATHS: frozenset[Loc] = frozenset({("store", "path"), ("store", "evidence_dir")})
# Folders the gateway creates on first use wherever they appear (an OPC-UA bus's client certificate).
WRITTEN_FIELDS: frozenset[str] = frozenset({"certificate_dir"})
# Certificate + key pairs that must load together (field names within one section).
KEY_PAIRS: tuple[tuple[str, str], ...] = (("tls_cert", "tls_key"), ("cert_file", "key_file"))
CA_FIELDS: frozenset[str] = frozenset({"ca_bundle", "ca_file"})


@dataclass
class CheckReport:
    """The outcome of checking one config file: the config (None if the schema refused it) and problems."""

    config: EstateConfig | None
    source: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_config(path: Path, secrets_path: Path | None = None) -> CheckReport:
    """Schema, then referenced files, then timing: every problem of ``path`` with its file and line."""
    try:
        doc = load_file(path)
        config = validate_document(doc, SecretStore.from_file(secrets_path))
    except ConfigError as exc:
        return CheckReport(None, str(path), list(exc.problems) or [str(exc)])
    base = path.resolve().parent
    resolved = resolve_paths(config, base)
    warnings = [_located(doc, loc, message) for loc, message in _sorted(doc, timing_warnings(resolved)
                                                                         + writable_warnings(resolved))]
    return CheckReport(resolved, doc.source, file_errors(doc, config, base), warnings)


def file_errors(doc: LocatedDocument, config: EstateConfig, base: Path) -> list[str]:
    """``file_problems`` of a validated config, paths taken relative to ``base``, each as ``file:line: ...``.

    The panel's config tools use this too, so a config they save is one ``run`` accepts.
    """
    resolved = resolve_paths(config, base)
    return [_located(doc, loc, message) for loc, message in _sorted(doc, file_problems(resolved))]


def _located(doc: LocatedDocument, loc: Loc, message: str) -> str:
    return f"{doc.where(loc)}: {dotted(loc)}: {message}"


def _sorted(doc: LocatedDocument, problems: list[tuple[Loc, str]]) -> list[tuple[Loc, str]]:
    return sorted(problems, key=lambda problem: doc.line_of(problem[0]) or 0)


# ------------------------------------------------------------------------------------------------ files


def path_fields(model: BaseModel, loc: Loc = ()) -> Iterator[tuple[Loc, Path]]:
    """Every ``Path`` value in a config, with its YAML path.

    Found by walking the models, so a new section's file fields are checked without being listed here.
    """
    for name in type(model).model_fields:
        value = getattr(model, name)
        here = (*loc, name)
        if isinstance(value, Path):
            yield here, value
        elif isinstance(value, BaseModel):
            yield from path_fields(value, here)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from path_fields(item, (*here, index))
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, BaseModel):
                    yield from path_fields(item, (*here, key))


def _enabled(model: BaseModel) -> bool:
    return bool(getattr(model, "enabled", True))


def _node(config: EstateConfig, loc: Loc) -> Any:
    node: Any = config
    for part in loc:
        node = node[part] if isinstance(part, int) or isinstance(node, dict) else getattr(node, part)
    return node


def _inside_disabled(config: EstateConfig, loc: Loc) -> bool:
    """True when the field sits in a disabled bus, camera, notifier or panel: ``run`` never opens it."""
    return any(isinstance(node := _node(config, loc[:i]), BaseModel) and not _enabled(node)
               for i in range(1, len(loc)))


def _readable_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file, or None."""
    try:
        if not path.exists():
            return f"file not found: {path}"
        if path.is_dir():
            return f"{path} is a folder, not a file"
        with path.open("rb"):
            pass
    except PermissionError:
        return f"{path} is not readable by this user (uid {os.geteuid()})"
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    return None


def _ca_problem(path: Path) -> str | None:
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, ValueError) as exc:
        return f"{path} holds no usable PEM certificate ({exc})"
    return None


def _pair_problem(cert: Path, key: Path) -> str | None:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, ValueError) as exc:
        return f"certificate {cert} and key {key} do not load as a pair ({exc})"
    return None


def file_problems(config: EstateConfig) -> list[tuple[Loc, str]]:
    """Errors: referenced input files, TLS material, profile folders and camera models."""
    problems: list[tuple[Loc, str]] = []
    unreadable: set[Loc] = set()
    for loc, path in path_fields(config):
        if loc in WRITTEN_PATHS or loc[-1] in WRITTEN_FIELDS or _inside_disabled(config, loc):
            continue
        reason = _readable_file(path)
        if reason is None and loc[-1] in CA_FIELDS:
            reason = _ca_problem(path)
        if reason is not None:
            unreadable.add(loc)
            problems.append((loc, reason))
    for loc, path in path_fields(config):
        for cert_name, key_name in KEY_PAIRS:
            if loc[-1] != cert_name or _inside_disabled(config, loc):
                continue
            key_loc = (*loc[:-1], key_name)
            key = getattr(_node(config, loc[:-1]), key_name, None)
            if isinstance(key, Path) and not ({loc, key_loc} & unreadable):
                reason = _pair_problem(path, key)
                if reason is not None:
                    problems.append((loc, reason))
    for index, bus in enumerate(config.buses):
        profiles_dir = getattr(bus, "profiles_dir", None)
        if profiles_dir and _enabled(bus) and not Path(profiles_dir).is_dir():
            problems.append((("buses", index, "profiles_dir"), f"folder not found: {profiles_dir}"))
    problems.extend(model_problems(config))
    return problems


def model_problems(config: EstateConfig) -> list[tuple[Loc, str]]:
    """Each enabled camera's model card, weights file (size and SHA-256) and the class names it uses."""
    from models.registry import ModelRegistry

    registry = ModelRegistry()
    problems: list[tuple[Loc, str]] = []
    for index, camera in enumerate(config.cameras):
        if not camera.enabled:
            continue
        loc: Loc = ("cameras", index, "model")
        try:
            model_dir = Path(camera.model.dir) if camera.model.dir else None
            card = registry.with_cards_in(model_dir).card(camera.model.card)
        except ConfigError as exc:
            problems.append(((*loc, "card"), str(exc)))
            continue
        try:
            registry.resolve(card, Path(camera.model.dir) if camera.model.dir else None)
        except ConfigError as exc:
            problems.append(((*loc, "dir") if camera.model.dir else (*loc, "card"), str(exc)))
        for zone_index, zone in enumerate(camera.zones):
            if zone.classes:
                _class_problem(card, zone.classes, ("cameras", index, "zones", zone_index, "classes"), problems)
        for name in type(camera.analytics).model_fields:
            names = getattr(camera.analytics, name)
            if name.endswith("_classes") and names:
                _class_problem(card, names, ("cameras", index, "analytics", name), problems)
    return problems


def _class_problem(card: Any, names: list[str], loc: Loc, problems: list[tuple[Loc, str]]) -> None:
    try:
        card.class_ids(names)
    except ConfigError as exc:
        problems.append((loc, str(exc)))


# ------------------------------------------------------------------------------------------------ warnings


def _creatable(path: Path) -> str | None:
    """Why this user could not create ``path`` (a file or folder), or None."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return f"cannot create {path}: no existing parent folder"
        probe = probe.parent
    if probe != path and not probe.is_dir():
        return f"cannot create {path}: {probe} is a file, not a folder"
    target_dir = probe if probe != path else (path if path.is_dir() else path.parent)
    if not os.access(target_dir, os.W_OK | os.X_OK):
        return f"cannot create or write {path}: {target_dir} is not writable by this user (uid {os.geteuid()})"
    return None


def writable_warnings(config: EstateConfig) -> list[tuple[Loc, str]]:
    """The store's file and evidence folder: where they cannot be created (by the user running check)."""
    out: list[tuple[Loc, str]] = []
    for loc in sorted(WRITTEN_PATHS, key=str):
        path = _node(config, loc)
        reason = _creatable(Path(path))
        if reason is not None:
            out.append((loc, reason))
    return out


def _line_of_device(config: EstateConfig, device: Any) -> tuple[str, str, int] | None:
    """(kind, line name, connections) of the shared line a device is on, or None when it has its own."""
    bus = next((b for b in config.buses if b.id == device.bus), None)
    if bus is None or not _enabled(bus):
        return None
    if bus.kind == "modbus_rtu":
        return ("RS-485 line", f"{bus.id} ({bus.port})", 1)
    if bus.kind == "modbus_tcp":
        options = ModbusTcpDeviceOptions.model_validate(device.options)  # validated with the config
        return ("converter", f"{bus.id} ({options.host or bus.host}:{options.port or bus.port})", bus.max_connections)
    return None


def timing_warnings(config: EstateConfig) -> list[tuple[Loc, str]]:
    """Devices on a shared line whose worst case (no answer, every retry) is longer than their poll period.

    Only one request is on a shared line at a time, so while such a device stays silent it holds
    the line longer than its own poll period: its own cycles are skipped and every other device on
    the line waits. (Once offline, the poller backs the device off, so this is the cost of each
    outage's start and of every retry, not of every cycle; a sum over all devices would overstate it.)
    """
    out: list[tuple[Loc, str]] = []
    members: dict[tuple[str, str, int], int] = {}
    for device in config.devices:
        line = _line_of_device(config, device) if device.enabled else None
        if line is not None:
            members[line] = members.get(line, 0) + 1
    for index, device in enumerate(config.devices):
        line = _line_of_device(config, device) if device.enabled else None
        if line is None or line[2] > 1:
            continue
        worst = device.timeout_s * (device.retries + 1)
        if worst > device.poll_interval_s:
            others = members[line] - 1
            out.append((("devices", index, "timeout_s"),
                        f"timeout_s × (retries + 1) = {device.timeout_s:g} s × {device.retries + 1} = {worst:g} s "
                        f"exceeds poll_interval_s {device.poll_interval_s:g} s on the shared {line[0]} {line[1]}: "
                        f"while it does not answer it misses its own polls"
                        + (f" and the {others} other device(s) on the line wait" if others else "")))
    return out
