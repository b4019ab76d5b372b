"""Reconnect backoff (jittered, capped) and the bounded parking lot for malformed payloads."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from drivers.mqtt.parking import PREVIEW_BYTES, ParkingLot
from drivers.mqtt.transport import BrokerSettings
from edge.backoff import Backoff


def test_backoff_doubles_with_equal_jitter_and_a_cap() -> None:
    """The reconnect backoff BrokerSession.run draws (edge.backoff, equal jitter) with the default settings."""
    rng = random.Random(7)
    settings = BrokerSettings(host="127.0.0.1", port=1883, client_id="t")
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (3, 8.0), (6, 60.0), (40, 60.0)]:
        delays = []
        for _ in range(200):
            backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s, jitter="equal", rng=rng)
            backoff.attempt = attempt
            delays.append(backoff.next_delay())
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # really jittered, not a fixed step


def test_parking_lot_keeps_the_newest_and_counts_everything() -> None:
    lot = ParkingLot(keep=3)
    now = datetime.now(UTC)
    for i in range(10):
        lot.park(now, f"t/{i}", "dev" if i % 2 else None, "json" if i < 7 else "utf8", f"error {i}", b"x" * (i * 100))
    state = lot.as_dict()
    assert state["total"] == 10 and state["by_kind"] == {"json": 7, "utf8": 3} and state["by_device"] == {"dev": 5}
    assert [p["topic"] for p in state["recent"]] == ["t/9", "t/8", "t/7"]  # newest first
    assert state["recent"][0]["size"] == 900 and len(state["recent"][0]["preview"]) == PREVIEW_BYTES
    binary = lot.park(now, "t/b", "dev", "utf8", "bad", b"\xff\xfe" * 100)
    assert binary.preview.startswith("hex:fffe") and binary.size == 200
