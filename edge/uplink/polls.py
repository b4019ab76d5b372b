"""What a batch carries: upload records, each with the store rows it covers.

Telemetry goes up as one record per device poll (contract v3): the outbox groups a lease's readings
(``Outbox.pending_polls``; ``edge.store.codec.telemetry_polls`` says how, and why the grouping is
the same on every resend), so one record stands for many store rows and the lane's cursor must move
to the *last* row a record covers, not to its id. Every other kind is one row per record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge.store.codec import MAX_POINTS

__all__ = ["MAX_POINTS", "UploadRecord"]


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
