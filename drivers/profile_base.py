"""What the Modbus, MQTT and OPC-UA device profiles share.

Strict frozen models, a point's unit fields with their checks, and the library that finds, loads and
caches profile files.

Each protocol's profile (``drivers/<protocol>/profile.py``) adds only what is its own: where a
point's value is (a register, a JSON selector, a node id) and how it is decoded. Why one base: the
three copies of the unit fields and their validators had already drifted in wording, and a fix to
one (a unit alias, a clearer error) has to reach every protocol.

A profile file is YAML (one per device model); a bad one is refused whole with every problem named
by file and line (``ConfigError.problems``), like the estate config.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge.config.yaml_loader import dotted, load_file
from edge.errors import ConfigError
from edge.units import UnitError, convert, unit_name


class ProfileModel(BaseModel):
    """Profiles are data: unknown keys are errors (a typo must not be ignored), values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PointUnits(ProfileModel):
    """The part of a point every protocol has: its unit, the device's own unit, a scale, a physical range."""

    unit: str = Field("", description="Canonical unit of the reading (use the canonical unit of the quantity).")
    device_unit: str | None = Field(
        None, description="Unit the device sends in, when it differs from `unit` (converted to `unit`).")
    scale: float = Field(1.0, description="Multiplier applied to the device's value, before unit conversion.")
    valid_min: float | None = Field(None, description="Below this (in `unit`) the reading is a sensor fault (quality BAD).")
    valid_max: float | None = Field(None, description="Above this (in `unit`) the reading is a sensor fault (quality BAD).")
    description: str = ""

    @field_validator("unit", "device_unit")
    @classmethod
    def _known_unit(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return unit_name(value)
        except UnitError as exc:
            raise ValueError(str(exc)) from None


class ConvertedPointUnits(PointUnits):
    """A point whose ``device_unit`` is fixed by the profile: it must convert to ``unit``.

    (A Modbus point may take its unit from a unit-code register instead, so the Modbus profile checks
    the conversion itself, once it knows which units the codes name.)
    """

    @model_validator(mode="after")
    def _convertible(self) -> Self:
        if self.device_unit is not None:
            try:
                convert(1.0, self.device_unit, self.unit)
            except UnitError as exc:
                raise ValueError(str(exc)) from None
        return self


P = TypeVar("P", bound=BaseModel)


def load_profile_file(path: Path, model: type[P], what: str = "") -> P:
    """Parse and validate one profile file into ``model``; its ``id`` is the file name.

    A problem of the whole profile (a model validator's ``points.<name>: ...; points.<other>: ...``)
    is split and each piece named by the line of the point it is about. ``what`` ("MQTT ", "OPC-UA ")
    names the protocol in the error.
    """
    doc = load_file(path)
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{path}: a profile must be a mapping")
    try:
        return model.model_validate({"id": path.stem, **doc.data})
    except ValidationError as exc:
        problems: list[str] = []
        for err in exc.errors(include_url=False, include_input=False):
            loc = tuple(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if not loc:
                problems.extend(f"{doc.where(_loc_of(piece))}: {piece}" for piece in msg.split("; "))
            else:
                problems.append(f"{doc.where(loc)}: {dotted(loc)}: {msg}")
        raise ConfigError(f"{path}: invalid {what}profile ({len(problems)} problem(s))", problems) from None


def _loc_of(message: str) -> tuple[str | int, ...]:
    head = message.split(":", 1)[0]
    return tuple(head.split(".")) if head.startswith("points") else ()


class ProfileFinder(Generic[P]):
    """Finds and caches one protocol's profiles.

    Looked up in ``extra_dirs`` first, then the directories in the environment variable ``env_var``
    (``os.pathsep``-separated), then the ones shipped with the driver.

    A name containing a path separator or ending in ``.yaml`` is read as a file path.
    """

    def __init__(self, extra_dirs: Iterable[Path | str], *, shipped: Path, env_var: str,
                 load: Callable[[Path], P], what: str = "") -> None:
        dirs = [Path(d) for d in extra_dirs]
        env = os.environ.get(env_var)
        if env:
            dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
        dirs.append(shipped)
        self.dirs: tuple[Path, ...] = tuple(dirs)
        self._load = load
        self._what = what
        self._cache: dict[str, P] = {}

    def names(self) -> list[str]:
        return sorted({p.stem for d in self.dirs if d.is_dir() for p in d.glob("*.yaml")})

    def path_of(self, name: str) -> Path:
        if "/" in name or os.sep in name or name.endswith((".yaml", ".yml")):
            path = Path(name)
            if not path.is_file():
                raise ConfigError(f"{self._what}profile file {name} does not exist")
            return path
        for d in self.dirs:
            candidate = d / f"{name}.yaml"
            if candidate.is_file():
                return candidate
        known = ", ".join(self.names()) or "none"
        raise ConfigError(f"unknown {self._what}device profile {name!r} "
                          f"(searched {', '.join(map(str, self.dirs))}; known: {known})")

    def get(self, name: str) -> P:
        profile = self._cache.get(name)
        if profile is None:
            profile = self._cache[name] = self._load(self.path_of(name))
        return profile

    def load_all(self) -> list[P]:
        return [self.get(n) for n in self.names()]
