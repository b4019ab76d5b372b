"""DL/T 645 meter profiles: which data items (DI) to read and how to turn them into readings. Data, not code.

One YAML file per meter model, in ``drivers/dlt645/profiles/`` (or a bus's ``profiles_dir``)::

    model: household meter             version: 2007 or 1997 (the DI size follows)
    serial: {baudrate: 2400, parity: E}
    points:
      energy_import: {di: 0x00010000, format: XXXXXX.XX, unit: kWh, kind: counter}
      active_power:  {di: 0x02030000, format: XX.XXXX, signed: true, device_unit: kW, unit: W}

A point's value is ``BCD(format, signed) * scale`` in ``device_unit`` (default ``unit``), converted
to ``unit`` (the canonical unit of the quantity). ``kind: counter`` marks running totals (the
normaliser keeps them monotonic; they must be in a counter unit such as kWh); ``optional`` points
that the meter answers with "no data requested" are dropped with an event instead of failing it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from drivers.dlt645.codec import ValueFormat
from drivers.profile_base import ProfileModel
from edge.config.devices import Category
from edge.errors import ConfigError
from edge.units import COUNTER_UNITS, UnitError, convert, unit_name

SHIPPED_DIR = Path(__file__).resolve().parent / "profiles"
_Profile = TypeVar("_Profile", bound=BaseModel)  # the protocol's profile model (DL/T 645 or CJ/T 188)


class SerialDefaults(ProfileModel):
    baudrate: Literal[1200, 2400, 4800, 9600, 19200] = 2400
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1


class MeterPoint(ProfileModel):
    di: int = Field(ge=0, le=0xFFFFFFFF, description="Data identifier DI3..DI0 as written in the standard, e.g. 0x00010000.")
    format: str = Field(description="BCD format, e.g. XXXXXX.XX (4 bytes, 2 decimals).")
    signed: bool = Field(False, description="The top bit of the most significant byte is the sign.")
    scale: float = Field(1.0, description="Multiplier after decoding (e.g. CT ratio on a secondary-side meter).")
    unit: str = Field("", description="Canonical unit of the reading.")
    device_unit: str | None = Field(None, description="Unit the meter reports in, when not ``unit`` (e.g. kW).")
    kind: Literal["counter", "gauge"] = "gauge"
    optional: bool = False
    valid_min: float | None = None
    valid_max: float | None = None
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> MeterPoint:
        ValueFormat.parse(self.format, signed=self.signed)
        try:
            unit = unit_name(self.unit)
            if self.device_unit is not None:
                convert(1.0, self.device_unit, unit)
        except UnitError as exc:
            raise ValueError(str(exc)) from None
        if self.kind == "counter" and unit not in COUNTER_UNITS:
            raise ValueError(f"a counter needs a counter unit ({', '.join(sorted(COUNTER_UNITS))}), not {self.unit!r}")
        return self

    @property
    def value_format(self) -> ValueFormat:
        return ValueFormat.parse(self.format, signed=self.signed)


class Dlt645Profile(ProfileModel):
    id: str
    model: str
    vendor: str = ""
    category: Category = "electricity"
    source: str = Field(description="Where the DI list comes from (the standard's appendix, a manual, a second implementation).")
    description: str = ""
    version: Literal[2007, 1997] = 2007
    serial: SerialDefaults = SerialDefaults()
    points: dict[str, MeterPoint]

    @model_validator(mode="after")
    def _dis_fit(self) -> Dlt645Profile:
        if not self.points:
            raise ValueError("a profile needs at least one point")
        if self.version == 1997:
            wide = [n for n, p in self.points.items() if p.di > 0xFFFF]
            if wide:
                raise ValueError(f"DL/T 645-1997 DIs are 2 bytes; too wide: {', '.join(wide)}")
        return self


def load_profile(name: str, extra_dirs: list[str] | tuple[str, ...] = ()) -> Dlt645Profile:
    """A profile by name (searched in ``extra_dirs``, then the shipped ones) or by path to a YAML file."""
    return load_yaml_profile(name, extra_dirs, SHIPPED_DIR, Dlt645Profile)


def find_profile(name: str, extra_dirs: list[str] | tuple[str, ...], shipped: Path) -> Path:
    if name.endswith((".yaml", ".yml")) or "/" in name:
        path = Path(name)
        if path.is_file():
            return path
        raise ConfigError(f"profile file {name} does not exist")
    for directory in (*map(Path, extra_dirs), shipped):
        candidate = directory / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in shipped.glob("*.yaml"))
    raise ConfigError(f"unknown profile {name!r} (shipped: {', '.join(known)})")


def load_yaml_profile(name: str, extra_dirs: list[str] | tuple[str, ...], shipped: Path, model: type[_Profile]) -> _Profile:
    path = find_profile(name, extra_dirs, shipped)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a profile must be a mapping")
    try:
        return model.model_validate({"id": path.stem, **data})
    except ValidationError as exc:
        problems = [f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                    for e in exc.errors(include_url=False, include_input=False)]
        raise ConfigError(f"{path}: invalid profile ({len(problems)} problem(s))", problems) from None
