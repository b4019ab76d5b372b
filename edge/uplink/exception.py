"""Report by exception for telemetry uploads: an installer option, off by default (issue 13 point 9).

A reading goes up when it says something new: the first of its point, a value that moved more than
the point's deadband from the last one sent, a change of quality, or ``max_interval_s`` after the
last one sent (so a platform still sees a steady point alive). Everything else is held back from the
upload only: the store keeps every reading, and rules, alarms and indicators on the gateway see all
of them. Alarms, events, indicators and device records are never filtered (only the telemetry lane
passes through here).

Telemetry records carry one poll each (contract v3): the decision is per point, and a point that
says nothing new leaves its record; a record left without points is not sent (its readings are
acknowledged as if sent). The record keeps its id (the stored poll's), so a resend after a restart
names the same record. The decision is taken once per batch,
on its first attempt, and the batch keeps that subset through retries; a reading judged again (the
halves of a split batch) is recognised as the reading last sent and kept. The state is in memory:
after a restart the first reading of each point goes up again (never less data), except inside a
record the platform already has (a resend of the in-flight window): it keeps the copy it has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edge.store.codec import record_points


@dataclass(slots=True)
class ReportByException:
    deadband: Mapping[str, float] = field(default_factory=dict)  # point name -> absolute deadband
    default_deadband: float = 0.0  # for points not named: 0 sends every change
    max_interval_s: float = 300.0
    _last: dict[tuple[str, str], tuple[Any, str, float]] = field(default_factory=dict)
    held: int = 0  # readings held back since start (for status and tests)

    def keep(self, payload: dict[str, Any]) -> bool:
        """Whether this one-reading payload (``device_id``, ``point``, ``value``, ``quality``, ``ts``) goes up."""
        return self._keep(payload["device_id"], payload["point"], payload["value"], payload["quality"],
                          _seconds(payload["ts"]))

    def filter(self, payloads: Iterable[dict[str, Any]]) -> list[bool]:
        return [self.keep(p) for p in payloads]

    def filter_records(self, records: Iterable[dict[str, Any]]) -> list[bool]:
        """Drop, in place, the points of each poll record that say nothing new; True where any is left."""
        out = []
        for record in records:
            device_id, t = record["device_id"], _seconds(record["ts"])
            points = [p for p in record_points(record) if self._keep(device_id, p["point"], p["value"], p["quality"], t)]
            record["points"] = points
            out.append(bool(points))
        return out

    def _keep(self, device_id: str, point: str, value: Any, quality: str, t: float) -> bool:
        """Whether this reading goes up; updates the last-sent state when it does."""
        key = (device_id, point)
        last = self._last.get(key)
        if last is not None:
            last_value, last_quality, last_t = last
            if t == last_t and value == last_value and quality == last_quality:
                return True  # the very record already judged and sent, again (a retry or a split batch)
            band = self.deadband.get(key[1], self.default_deadband)
            unchanged = (quality == last_quality and value is not None and last_value is not None
                         and abs(value - last_value) <= band)
            if unchanged and t - last_t < self.max_interval_s:
                self.held += 1
                return False
        self._last[key] = (value, quality, t)
        return True


def _seconds(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
