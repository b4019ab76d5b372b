"""Parked payloads: messages that could not become readings, kept for the panel instead of crashing the source.

Policy (bounded, so a device that floods garbage cannot grow memory): the newest ``keep`` parked
messages are kept with their topic, device, error kind and message, size and the first
``preview_bytes`` bytes (a 1 MB payload is not kept whole); counters per kind and per device are
never trimmed. Parking never raises.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

PREVIEW_BYTES = 120


@dataclass(frozen=True, slots=True)
class ParkedMessage:
    ts: datetime
    topic: str
    device_id: str | None
    kind: str  # too_large, utf8, json, type, missing, unit, hex, timestamp, quality
    error: str
    size: int
    preview: str  # the payload's first bytes: text when it decodes, else hex

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ts"] = self.ts.isoformat()
        return out


class ParkingLot:
    def __init__(self, keep: int = 200) -> None:
        self.recent: deque[ParkedMessage] = deque(maxlen=keep)
        self.by_kind: Counter[str] = Counter()
        self.by_device: Counter[str] = Counter()
        self.total = 0

    def park(self, ts: datetime, topic: str, device_id: str | None, kind: str, error: str, payload: bytes) -> ParkedMessage:
        head = payload[:PREVIEW_BYTES]
        try:
            preview = head.decode("utf-8")
        except UnicodeDecodeError:
            preview = "hex:" + head.hex()
        parked = ParkedMessage(ts, topic, device_id, kind, error, len(payload), preview)
        self.recent.append(parked)
        self.by_kind[kind] += 1
        if device_id is not None:
            self.by_device[device_id] += 1
        self.total += 1
        return parked

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "by_kind": dict(self.by_kind), "by_device": dict(self.by_device),
                "recent": [p.as_dict() for p in reversed(self.recent)]}
