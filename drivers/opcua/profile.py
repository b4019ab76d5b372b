"""OPC-UA device profiles: a PLC program's variables as points (YAML data, like the Modbus and MQTT profiles).

A point names its variable by a node id template: ``{prefix}`` (and any other ``{name}``) is filled
from the device's ``options``, so one profile serves every pump room programmed from the same PLC
template. Ids without ``nsu=`` take the profile's ``namespace`` URI (see ``drivers.opcua.nodeid``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import Field, model_validator

from drivers.opcua.nodeid import NodeIdError, NodeRef, parse_node_ref
from drivers.profile_base import ConvertedPointUnits, ProfileFinder, ProfileModel, load_profile_file
from edge.config.devices import Category
from edge.errors import ConfigError

SHIPPED_PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
ENV_PROFILES_DIR = "EDGE_OPCUA_PROFILES_DIR"


class OpcUaPoint(ConvertedPointUnits):
    """One PLC variable; ``device_unit`` is the unit the PLC uses when it differs from ``unit``."""

    node: str = Field(description="Node id template, e.g. 'nsu=urn:plc;s={prefix}.Pump1.Current' or 's={prefix}.Level'.")
    deadband: float | None = Field(
        None, ge=0, description="Absolute deadband in the PLC's unit: smaller changes are not reported (when supported)."
    )


class OpcUaProfile(ProfileModel):
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


class OpcUaProfileLibrary(ProfileFinder[OpcUaProfile]):
    """Finds and caches profiles: ``extra_dirs``, then ``$EDGE_OPCUA_PROFILES_DIR``, then the shipped ones."""

    def __init__(self, extra_dirs: Iterable[Path | str] = ()) -> None:
        super().__init__(extra_dirs, shipped=SHIPPED_PROFILES_DIR, env_var=ENV_PROFILES_DIR, load=load_profile,
                         what="OPC-UA ")


def load_profile(path: Path) -> OpcUaProfile:
    """Parse and validate one profile file; problems name the file and line."""
    return load_profile_file(path, OpcUaProfile, "OPC-UA ")
