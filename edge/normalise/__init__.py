"""Normalisation: canonical units (from the kernel's ``edge.units``), validity and monotonic counters.

See ``normaliser`` for the contract.
"""

from edge.normalise.counters import CounterAnomaly, CounterAnomalyKind, CounterResult, CounterState, CounterTracker
from edge.normalise.normaliser import Normaliser, PointPolicy, canonicalise, validity

__all__ = [
    "CounterAnomaly",
    "CounterAnomalyKind",
    "CounterResult",
    "CounterState",
    "CounterTracker",
    "Normaliser",
    "PointPolicy",
    "canonicalise",
    "validity",
]
