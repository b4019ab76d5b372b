"""Normalisation: canonical units, validity and monotonic counters (see ``normaliser`` for the contract)."""

from edge.normalise.counters import CounterAnomaly, CounterAnomalyKind, CounterResult, CounterState, CounterTracker
from edge.normalise.normaliser import Normaliser, PointPolicy, canonicalise, validity
from edge.normalise.units import COUNTER_UNITS, UnitError, canonical_unit, convert, to_canonical

__all__ = [
    "COUNTER_UNITS",
    "CounterAnomaly",
    "CounterAnomalyKind",
    "CounterResult",
    "CounterState",
    "CounterTracker",
    "Normaliser",
    "PointPolicy",
    "UnitError",
    "canonical_unit",
    "canonicalise",
    "convert",
    "to_canonical",
    "validity",
]
