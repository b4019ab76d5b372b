"""Device profiles: one YAML file per meter or sensor model, describing its register map.

A profile is data, not code: installers add a model by dropping a YAML file into a profiles
directory (the bus's ``profiles_dir``, or ``$EDGE_PROFILES_DIR``), or by giving a device's
``profile`` as a path to a ``.yaml`` file. The shipped profiles live in ``drivers/modbus/profiles``
and each one cites where its register map comes from (``shared/docs/devices.md``).

How a point's value is computed from the wire (all steps optional)::

    raw     = registers decoded as ``type`` in ``byte_order`` / ``word_order``
    raw    += value of ``offset_from``                  (transmitter zero offset)
    value   = raw * scale + offset
    value  /= 10 ** value of ``decimals_from``          (transmitter decimal places)
    value  *= value of each ``scale_by`` point          (CT / PT ratios of a DTSU666)
    value   = convert(value, device unit -> ``unit``)  (device unit: ``unit_codes[unit_from]``,
                                                          else ``device_unit``, else ``unit``)

Points with ``emit: false`` are read for the others' sake (unit code, decimals, ratios) and not
reported. ``alternates`` lists other addresses of the same quantity on other firmware (the driver
falls back to them when the device answers "illegal data address"); ``optional`` points that no
address serves are dropped instead of failing the device. ``valid_range_from`` names two points
(range zero and full scale) outside which, plus ``valid_margin`` of the span, the value is a
sensor fault (quality BAD).

Contact inputs and relay states are bits: a point with ``type: bit`` (or ``bool``) is one coil
(``function_code: 1``) or discrete input (``function_code: 2``), its value 0 or 1; bit points live
only on FC1/FC2 and FC1/FC2 carry only bit points (the validator says which point breaks this).
``names`` gives a state point's named values (``{0: 停止, 1: 上行, 2: 下行}``), for the installer's
state rules (``DeviceConfig.states``) and the panel.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from drivers.modbus.codec import BIT_FUNCTION_CODES, MAX_READ_BITS, MAX_READ_REGISTERS, DataType
from drivers.profile_base import PointUnits, ProfileFinder, ProfileModel, load_profile_file
from edge.config.devices import Category
from edge.sources import CounterSpec
from edge.units import UnitError, convert, to_canonical, unit_name

SHIPPED_PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
ENV_PROFILES_DIR = "EDGE_PROFILES_DIR"

Order = Literal["big", "little"]


class PointSpec(PointUnits):
    """One value of a device: where it is (address, function code, type) and how it becomes a reading.

    ``device_unit`` is the unit the device counts in; ``unit_from`` / ``unit_codes`` take it from a
    unit-code register instead (the profile checks that every one converts to ``unit``).
    """

    address: int = Field(ge=0, le=0xFFFF,
                         description="0-based register, coil or input (PDU) address; hex like 0x2000 is fine.")
    type: DataType = Field(description="int16, uint16, int32, uint32, float32, int64, uint64, float64, "
                                       "or bit (also: bool) for a coil / discrete input.")
    function_code: Literal[1, 2, 3, 4] | None = Field(
        None, description="1 coils / 2 discrete inputs (bit points), 3 holding / 4 input registers; "
                          "default: the profile's.")
    byte_order: Order | None = Field(None, description="Byte order inside each register; default: the profile's.")
    word_order: Order | None = Field(None, description="Register order of multi-register values; default: the profile's.")
    offset: float = Field(0.0, description="Added after scaling.")
    kind: Literal["gauge", "counter", "state"] = Field("gauge", description="counter: a running total (kWh, m³).")
    emit: bool = Field(True, description="false: read only to compute other points (unit code, decimals, ratios).")
    decimals_from: str | None = Field(None, description="Point holding the number of decimal places.")
    offset_from: str | None = Field(None, description="Point whose raw value is added to this raw value.")
    unit_from: str | None = Field(None, description="Point holding a unit code, looked up in `unit_codes`.")
    unit_codes: dict[int, str] = Field(default_factory=dict)
    scale_by: list[str] = Field(default_factory=list, description="Points whose values multiply this one (ratios).")
    valid_range_from: tuple[str, str] | None = Field(None, description="Points with the range zero and full scale.")
    valid_margin: float = Field(0.05, ge=0, le=1, description="Share of the span allowed beyond the range.")
    alternates: list[int] = Field(default_factory=list, description="Other addresses of this value (firmware variants).")
    optional: bool = Field(False, description="Drop the point instead of failing the device when no address serves it.")
    refresh_s: float | None = Field(
        None, gt=0, description="Configuration register: read again at most this often, not every poll."
    )
    rollover: float | None = Field(
        None, gt=0, description="Counter: the value at which it wraps to 0, in `unit` (default: from type and scale).")
    max_rate_per_s: float | None = Field(
        None, gt=0, description="Counter: fastest plausible growth in `unit` per second (default: the profile's).")
    names: dict[int, str] = Field(
        default_factory=dict, description="State point: staff-visible name per value, e.g. {0: 停止, 1: 上行}.")

    @field_validator("type", mode="before")
    @classmethod
    def _bool_is_bit(cls, value: object) -> object:
        return DataType.BIT if value in ("bool", "boolean") else value

    @field_validator("unit_codes")
    @classmethod
    def _known_codes(cls, value: dict[int, str]) -> dict[int, str]:
        out = {}
        for code, unit in value.items():
            try:
                out[code] = unit_name(unit)
            except UnitError as exc:
                raise ValueError(f"unit code {code}: {exc}") from None
        return out

    @property
    def registers(self) -> int:
        return self.type.registers

    def register_modulus(self) -> float | None:
        """Where an integer counter register wraps, in ``unit``: 2**bits x scale (device unit converted).

        Unknown (None) for floats, and where other registers change the value (offset, decimals or
        ratios read from the meter): the wrap then happens at a number the profile cannot know.
        """
        if self.kind != "counter" or self.type.value.startswith("float") or self.type.value.startswith("int"):
            return None
        if self.offset or self.decimals_from or self.offset_from or self.scale_by or self.unit_from:
            return None
        modulus = float(2 ** (16 * self.registers)) * abs(self.scale)
        if self.device_unit and self.unit and self.device_unit != self.unit:
            modulus = convert(modulus, self.device_unit, self.unit)
        return modulus

    def counter_spec(self, default_max_rate: float | None) -> CounterSpec:
        """Rollover and plausible rate in the canonical unit the normaliser sees the readings in."""
        rollover = self.rollover if self.rollover is not None else self.register_modulus()
        max_rate = self.max_rate_per_s if self.max_rate_per_s is not None else default_max_rate
        if self.unit:
            rollover = to_canonical(rollover, self.unit)[0] if rollover is not None else None
            max_rate = to_canonical(max_rate, self.unit)[0] if max_rate is not None else None
        return CounterSpec(rollover, max_rate)

    def references(self) -> list[str]:
        refs = [r for r in (self.decimals_from, self.offset_from, self.unit_from) if r]
        refs.extend(self.scale_by)
        if self.valid_range_from:
            refs.extend(self.valid_range_from)
        return refs


class SerialDefaults(ProfileModel):
    """The model's factory serial settings, for the installer's reference (the bus config decides)."""

    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    unit_id: int = Field(1, ge=0, le=247)


class Profile(ProfileModel):
    id: str = Field("", description="Set from the file name.")
    model: str
    vendor: str
    source: str = Field(min_length=1, description="Where the register map comes from (cite devices.md and its sources).")
    description: str = ""
    category: Category
    function_code: Literal[1, 2, 3, 4] = 3
    byte_order: Order = "big"
    word_order: Order = "big"
    max_registers_per_read: int = Field(MAX_READ_REGISTERS, ge=1, le=MAX_READ_REGISTERS)
    max_bits_per_read: int = Field(MAX_READ_BITS, ge=1, le=MAX_READ_BITS,
                                   description="Most coils / inputs one FC1/FC2 read may ask for.")
    serial: SerialDefaults = SerialDefaults()
    counter_max_rate_per_s: float | None = Field(
        None, gt=0, description="Fastest plausible growth of this model's counters, in their unit per second "
                                "(e.g. a 60 A single-phase meter: 0.005 kWh/s); a faster jump is a meter swap.")
    points: dict[str, PointSpec]

    def counter_specs(self) -> dict[str, CounterSpec]:
        """Each emitted counter point's rollover and plausible rate (for the normaliser)."""
        return {name: p.counter_spec(self.counter_max_rate_per_s) for name, p in self.points.items()
                if p.kind == "counter" and p.emit}

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        problems: list[str] = []
        for name, point in self.points.items():
            for ref in point.references():
                if ref not in self.points:
                    problems.append(f"points.{name}: refers to unknown point {ref!r}")
            if point.unit_from and not point.unit_codes:
                problems.append(f"points.{name}: unit_from needs unit_codes")
            end = point.address + point.registers
            if end > 0x10000:
                problems.append(f"points.{name}: address {point.address:#06x} + {point.registers} registers overflows")
            for alt in point.alternates:
                if alt + point.registers > 0x10000:
                    problems.append(f"points.{name}: alternate {alt:#06x} overflows")
            if point.registers > self.max_registers_per_read:
                problems.append(f"points.{name}: needs more registers than max_registers_per_read")
            problems.extend(self._bit_problems(name, point))
            target = point.unit
            sources = list(point.unit_codes.values()) if point.unit_from else [point.device_unit or target]
            for src in sources:
                try:
                    convert(1.0, src, target)
                except UnitError as exc:
                    problems.append(f"points.{name}: {exc}")
        if not problems:
            try:
                self.resolution_order  # noqa: B018 - validates the dependency graph
            except ValueError as exc:
                problems.append(str(exc))
        if not any(p.emit for p in self.points.values()):
            problems.append("points: no point is emitted")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _bit_problems(self, name: str, point: PointSpec) -> list[str]:
        """Bits live on FC1/FC2 and FC1/FC2 carry only bits: a mix-up would decode nonsense silently."""
        fc = point.function_code or self.function_code
        bit = point.type is DataType.BIT
        if bit and fc not in BIT_FUNCTION_CODES:
            return [f"points.{name}: a bit point is a coil (function_code 1) or a discrete input (2), not FC{fc}"]
        if not bit and fc in BIT_FUNCTION_CODES:
            return [f"points.{name}: FC{fc} reads coils / discrete inputs: give type bit (or bool), not {point.type}"]
        if bit and point.kind == "counter":
            return [f"points.{name}: a bit point cannot be a counter"]
        return []

    def spec_order(self, point: PointSpec) -> tuple[int, Order, Order]:
        return (
            point.function_code or self.function_code,
            point.byte_order or self.byte_order,
            point.word_order or self.word_order,
        )

    @cached_property
    def resolution_order(self) -> tuple[str, ...]:
        """Points ordered so that every point comes after the points it refers to."""
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str, trail: tuple[str, ...]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                raise ValueError(f"points: circular reference {' -> '.join((*trail, name))}")
            state[name] = 1
            for ref in self.points[name].references():
                visit(ref, (*trail, name))
            state[name] = 2
            order.append(name)

        for name in self.points:
            visit(name, ())
        return tuple(order)


class ProfileLibrary(ProfileFinder[Profile]):
    """Finds and caches profiles: ``extra_dirs`` first, then ``$EDGE_PROFILES_DIR``, then the shipped ones.

    A name containing a path separator or ending in ``.yaml`` is read as a file path.
    """

    def __init__(self, extra_dirs: Iterable[Path | str] = ()) -> None:
        super().__init__(extra_dirs, shipped=SHIPPED_PROFILES_DIR, env_var=ENV_PROFILES_DIR, load=load_profile)


def load_profile(path: Path) -> Profile:
    """Parse and validate one profile file; errors name the file and line (``ConfigError.problems``)."""
    return load_profile_file(path, Profile)
