"""OPC-UA device profiles: a PLC program's variables as points (YAML data, like the Modbus and MQTT profiles).

A point names its variable by a node id template: ``{prefix}`` (and any other ``{name}``) is filled
from the device's ``options``, so one profile serves every pump room programmed from the same PLC
template. Ids without ``nsu=`` take the profile's ``namespace`` URI (see ``drivers.opcua.nodeid``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from drivers.opcua.nodeid import NodeIdError, NodeRef, parse_node_ref
from edge.config.devices import Category
from edge.config.yaml_loader import dotted, load_file
from edge.errors import ConfigError
from edge.units import UnitError, convert, unit_name

SHIPPED_PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
ENV_PROFILES_DIR = "EDGE_OPCUA_PROFILES_DIR"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpcUaPoint(_Model):
    node: str = Field(description="Node id template, e.g. 'nsu=urn:plc;s={prefix}.Pump1.Current' or 's={prefix}.Level'.")
    unit: str = Field("", description="Canonical unit of the reading.")
    device_unit: str | None = Field(None, description="Unit the PLC uses when it differs (converted to `unit`).")
    scale: float = Field(1.0, description="Multiplier applied to the PLC value, before unit conversion.")
    deadband: float | None = Field(
        None, ge=0, description="Absolute deadband in the PLC's unit: smaller changes are not reported (when supported)."
    )
    valid_min: float | None = Field(None, description="Below this (in `unit`) the value is a sensor fault (quality BAD).")
    valid_max: float | None = Field(None, description="Above this (in `unit`) the value is a sensor fault (quality BAD).")
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

    @model_validator(mode="after")
    def _convertible(self) -> OpcUaPoint:
        if self.device_unit is not None:
            try:
                convert(1.0, self.device_unit, self.unit)
            except UnitError as exc:
                raise ValueError(str(exc)) from None
        return self


class OpcUaProfile(_Model):
    id: str = Field("", description="Set from the file name.")
    model: str
    vendor: str
    source: str = Field(min_length=1, description="Where the variable list comes from.")
    description: str = ""
    category: Category
    namespace: str | None = Field(None, description="Namespace URI of node ids written without nsu=.")
    points: dict[str, OpcUaPoint] = Field(min_length=1)

    @model_validator(mode="after")
    def _nodes_parse(self) -> OpcUaProfile:
        problems = []
        for name, point in self.points.items():
            try:
                parse_node_ref(point.node.format_map(_Placeholder()), self.namespace)
            except NodeIdError as exc:
                problems.append(f"points.{name}: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def node_refs(self, options: Mapping[str, object]) -> dict[str, NodeRef]:
        """Each point's node for one device; ``ConfigError`` names a missing option or a bad id."""
        out: dict[str, NodeRef] = {}
        for name, point in self.points.items():
            try:
                text = point.node.format_map({k: str(v) for k, v in options.items()})
            except KeyError as exc:
                raise ConfigError(f"point {name}: node {point.node!r} needs options.{exc.args[0]}") from None
            try:
                out[name] = parse_node_ref(text, str(options.get("namespace", self.namespace or "")) or None)
            except NodeIdError as exc:
                raise ConfigError(f"point {name}: {exc}") from None
        return out


class _Placeholder(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "x"


class OpcUaProfileLibrary:
    """Finds and caches profiles: ``extra_dirs``, then ``$EDGE_OPCUA_PROFILES_DIR``, then the shipped ones."""

    def __init__(self, extra_dirs: Iterable[Path | str] = ()) -> None:
        dirs = [Path(d) for d in extra_dirs]
        env = os.environ.get(ENV_PROFILES_DIR)
        if env:
            dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
        dirs.append(SHIPPED_PROFILES_DIR)
        self.dirs: tuple[Path, ...] = tuple(dirs)
        self._cache: dict[str, OpcUaProfile] = {}

    def names(self) -> list[str]:
        return sorted({p.stem for d in self.dirs if d.is_dir() for p in d.glob("*.yaml")})

    def get(self, name: str) -> OpcUaProfile:
        profile = self._cache.get(name)
        if profile is None:
            profile = self._cache[name] = load_profile(self._path_of(name))
        return profile

    def _path_of(self, name: str) -> Path:
        if "/" in name or os.sep in name or name.endswith((".yaml", ".yml")):
            if not Path(name).is_file():
                raise ConfigError(f"OPC-UA profile file {name} does not exist")
            return Path(name)
        for d in self.dirs:
            if (d / f"{name}.yaml").is_file():
                return d / f"{name}.yaml"
        raise ConfigError(f"unknown OPC-UA device profile {name!r} (known: {', '.join(self.names()) or 'none'})")


def load_profile(path: Path) -> OpcUaProfile:
    doc = load_file(path)
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{path}: a profile must be a mapping")
    try:
        return OpcUaProfile.model_validate({"id": path.stem, **doc.data})
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            loc = tuple(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{doc.where(loc)}: {dotted(loc)}: {msg}" if loc else f"{path}: {msg}")
        raise ConfigError(f"{path}: invalid OPC-UA profile ({len(problems)} problem(s))", problems) from None
