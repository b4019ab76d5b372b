"""Units: one canonical unit per quantity, and exact conversions into it.

Why canonical units: indicators add kWh from a meter that reports Wh to kWh from one that reports
kWh, and a hydrant threshold of 0.07 MPa must hold whether the transmitter is set to kPa, bar or
metres of water. Every reading that leaves the pipeline is in the canonical unit of its quantity:

    energy kWh · reactive energy kvarh · power W · reactive power var · apparent power VA
    voltage V · current A · frequency Hz · volume m³ · flow m³/h · pressure MPa · length/level m
    temperature °C · ratio (power factor) "" · percent % · angle °

Water head is the one cross-quantity conversion: a level transmitter set to mH₂O reports a water
height (1 mH₂O = 1 m of level), and a pressure transmitter set to mH₂O reports pressure
(1 mH₂O = 9.80665 kPa). ``convert`` accepts both, because the target unit says which is meant; a
submersible level transmitter set to kPa or bar is converted to metres of fresh water the same way.
Unknown units raise ``UnitError`` naming the unit; nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

KPA = 0.001  # MPa per kPa
G = 9.80665  # standard gravity: 1 mH2O = 9.80665 kPa


class UnitError(ValueError):
    """A unit is unknown, or two units measure different quantities."""


@dataclass(frozen=True, slots=True)
class UnitInfo:
    quantity: str
    factor: float  # multiply a value in this unit by factor to get the canonical unit
    canonical: str


def _q(quantity: str, canonical: str, units: dict[str, float]) -> dict[str, UnitInfo]:
    return {name: UnitInfo(quantity, factor, canonical) for name, factor in units.items()}


_UNITS: dict[str, UnitInfo] = {
    **_q("energy", "kWh", {"Wh": 1e-3, "kWh": 1.0, "MWh": 1e3}),
    **_q("reactive_energy", "kvarh", {"varh": 1e-3, "kvarh": 1.0, "Mvarh": 1e3}),
    **_q("power", "W", {"W": 1.0, "kW": 1e3, "MW": 1e6}),
    **_q("reactive_power", "var", {"var": 1.0, "kvar": 1e3, "Mvar": 1e6}),
    **_q("apparent_power", "VA", {"VA": 1.0, "kVA": 1e3, "MVA": 1e6}),
    **_q("voltage", "V", {"mV": 1e-3, "V": 1.0, "kV": 1e3}),
    **_q("current", "A", {"mA": 1e-3, "A": 1.0, "kA": 1e3}),
    **_q("frequency", "Hz", {"mHz": 1e-3, "Hz": 1.0}),
    **_q("volume", "m³", {"L": 1e-3, "m³": 1.0}),
    **_q("flow", "m³/h", {"m³/h": 1.0, "m³/s": 3600.0, "L/s": 3.6, "L/min": 0.06, "L/h": 1e-3}),
    **_q(
        "pressure",
        "MPa",
        {
            "Pa": 1e-6,
            "kPa": KPA,
            "MPa": 1.0,
            "bar": 0.1,
            "mbar": 1e-4,
            "kgf/cm²": G * 10 * KPA,  # 1 kgf/cm² = 98.0665 kPa
            "psi": 6.894757293168 * KPA,
            "mH₂O": G * KPA,
            "mmH₂O": G * 1e-3 * KPA,
        },
    ),
    **_q("length", "m", {"mm": 1e-3, "cm": 1e-2, "m": 1.0}),
    **_q("temperature", "°C", {"°C": 1.0}),
    **_q("ratio", "", {"": 1.0}),
    **_q("percent", "%", {"%": 1.0}),
    **_q("angle", "°", {"°": 1.0}),
    **_q("duration", "s", {"ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}),
    **_q("rate", "1/s", {"1/s": 1.0, "1/min": 1 / 60}),
}

# Metres of water as a *height* (level), per unit.
_WATER_HEAD_M: dict[str, float] = {"mH₂O": 1.0, "mmH₂O": 1e-3}

_ALIASES: dict[str, str] = {
    "m3": "m³",
    "m^3": "m³",
    "m3/h": "m³/h",
    "m^3/h": "m³/h",
    "l": "L",
    "l/s": "L/s",
    "l/min": "L/min",
    "kg/cm²": "kgf/cm²",
    "kg/cm2": "kgf/cm²",
    "kgf/cm2": "kgf/cm²",
    "mH2O": "mH₂O",
    "mmH2O": "mmH₂O",
    "mh2o": "mH₂O",
    "mmh2o": "mmH₂O",
    "degC": "°C",
    "℃": "°C",
    "deg": "°",
    "kpa": "kPa",
    "mpa": "MPa",
    "hz": "Hz",
    "kwh": "kWh",
    "-": "",
}

# Canonical units whose values are running totals (registers that only count up).
COUNTER_UNITS: frozenset[str] = frozenset({"kWh", "kvarh", "m³"})


def unit_name(unit: str) -> str:
    """The spelling ``convert`` uses for ``unit`` (e.g. ``m3`` -> ``m³``); raises ``UnitError`` if unknown."""
    name = _ALIASES.get(unit, unit)
    if name not in _UNITS:
        raise UnitError(f"unknown unit {unit!r}")
    return name


def info(unit: str) -> UnitInfo:
    return _UNITS[unit_name(unit)]


def canonical_unit(unit: str) -> str:
    return info(unit).canonical


def is_known(unit: str) -> bool:
    return _ALIASES.get(unit, unit) in _UNITS


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit``; raises ``UnitError`` across quantities."""
    src, dst = unit_name(from_unit), unit_name(to_unit)
    if src == dst:
        return value
    a, b = _UNITS[src], _UNITS[dst]
    if a.quantity == b.quantity:
        return value * a.factor / b.factor
    if src in _WATER_HEAD_M and b.quantity == "length":
        return value * _WATER_HEAD_M[src] / b.factor
    if dst in _WATER_HEAD_M and a.quantity == "length":
        return value * a.factor / _WATER_HEAD_M[dst]
    if a.quantity == "pressure" and b.quantity == "length":
        # Hydrostatic head of fresh water: a level transmitter set to kPa or bar.
        return value * a.factor / (G * KPA) / b.factor
    if a.quantity == "length" and b.quantity == "pressure":
        return value * a.factor * (G * KPA) / b.factor
    raise UnitError(f"cannot convert {from_unit!r} ({a.quantity}) to {to_unit!r} ({b.quantity})")


def to_canonical(value: float, unit: str) -> tuple[float, str]:
    """(value, unit) in the canonical unit of the unit's quantity."""
    i = info(unit)
    return value * i.factor, i.canonical
