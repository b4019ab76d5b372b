"""Telemetry goes up as one record per device poll (contract v3): grouping at lease time.

The store keeps one row per reading, each with its own id (ULID), and nothing about that changes:
durability, the outbox cursor and eviction work on readings as before. When the uplink leases a
stretch of the telemetry lane it groups consecutive readings of the same device with the same
timestamp (one poll: a Modbus poll stamps all its points with one instant and commits them in one
transaction) into one record::

    {"id": <id of the poll's first reading>, "device_id": ..., "ts": ...,
     "points": [{"point", "value", "unit", "quality"}, ...]}

Why here and not in the store: grouping is a property of the upload, so the spine (store writes,
fsync per group commit, the ack cursor) stays exactly as it is; the store hands out readings and
the uplink moves its cursor to the *last* reading a record covers.

Idempotency: a record's id is the id of its first reading, so a resend after a crash must group the
same readings again. Leases start where the previous batch ended, which is always the end of a
record, and a group is the maximal run of consecutive rows with one (device, ts), cut every
``MAX_POINTS`` rows counted from the run's start; so the grouping is a function of the rows alone,
except at the end of a lease, where the last run may continue beyond what was read. That run is
held back (it goes in a later lease) when the read was cut by its limit, and when its timestamp is
within ``SEAL_S`` of now, so a poll whose readings arrive in two commits (an OPC UA subscription
delivering two notifications with one source timestamp) is not sent half under an id that would
later name the whole. A run with newer rows after it is complete.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

MAX_POINTS = 1000  # points per record (the v3 schema's maxItems); a longer run becomes several records
SEAL_S = 1.0  # a trailing run this close to now (either way) may still grow: it waits for the next lease

_isfinite = math.isfinite


@dataclass(slots=True)
class UploadRecord:
    """One record of a batch as it goes up: its id upstream, its payload, and the store ids it covers.

    ``last_id`` is the highest store id the record covers (the cursor moves there once it is acked):
    its own id for every kind except telemetry, where it is the poll's last reading.
    ``attachments`` holds the evidence pictures its payload references by id.
    """

    id: str
    payload: dict[str, Any]
    last_id: str
    attachments: dict[str, bytes] = field(default_factory=dict)


_poll_key = itemgetter("device_id", "ts")


def group_polls(readings: Sequence[dict[str, Any]], *, cut: bool, now_s: float) -> list[UploadRecord]:
    """The complete poll records among ``readings`` (v2-shaped telemetry payloads, in id order).

    ``cut``: the read stopped at its limit, so the last run may continue. ``now_s``: the time used to
    judge whether the last run can still grow (seconds since the epoch). Returns records in order; the
    readings after the last record returned are left for a later lease.
    """
    records: list[UploadRecord] = []
    append = records.append
    for (device_id, ts), run in groupby(readings, _poll_key):
        rows = list(run)
        for start in range(0, len(rows), MAX_POINTS):
            chunk = rows[start : start + MAX_POINTS]
            append(UploadRecord(chunk[0]["id"], {
                "id": chunk[0]["id"], "device_id": device_id, "ts": ts,
                "points": [{"point": r["point"], "value": _finite(r["value"]), "unit": r["unit"],
                            "quality": r["quality"]} for r in chunk],
            }, chunk[-1]["id"]))
    if records and _may_grow(records[-1], cut=cut, now_s=now_s):
        records.pop()
    return records


def _may_grow(last: UploadRecord, *, cut: bool, now_s: float) -> bool:
    if len(last.payload["points"]) == MAX_POINTS:
        return False  # a full chunk is complete whatever follows
    if cut:
        return True
    return abs(now_s - _seconds(last.payload["ts"])) < SEAL_S


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such a value goes up as null (its quality already says bad)."""
    return value if value is None or _isfinite(value) else None


def _seconds(ts: str) -> float:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` -> seconds since the epoch (only to compare with now)."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
