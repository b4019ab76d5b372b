"""What an acknowledged batch costs the store: one lease read, at most one cursor write, no empty-lane reads
before every lease (issue 13 point 9), over httpx's MockTransport playing the platform."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from pydantic import SecretStr

from edge.records import Lane, Reading
from edge.store import Store
from edge.uplink import Uplink
from edge.uplink.auth import TokenManager
from edge.uplink.client import PlatformClient
from edge.uplink.uplink import UplinkSettings
from tests.helpers.waiting import eventually_async

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def platform(received: list[dict]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 3600})
        body = json.loads(gzip.decompress(request.content))
        received.append(body)
        return httpx.Response(200, json={"accepted": len(body["records"]), "duplicates": 0})

    return httpx.MockTransport(answer)


async def test_a_drain_reads_each_lease_once_and_shares_cursor_writes(tmp_path: Path) -> None:
    received: list[dict] = []
    async with Store(tmp_path / "edge.db", maintenance_interval_s=0) as store:
        for second in range(60):  # 60 s of 50 meters x 30 points: 3,000 polls, 90,000 readings
            await store.append_readings([Reading(f"EM-{d}", f"p{p}", float(p), "kWh", T0 + timedelta(seconds=second))
                                         for d in range(50) for p in range(30)])
        calls: Counter[str] = Counter()
        for name in ("pending", "ack"):
            method = getattr(store, name)

            def counted(*args, _method=method, _name=name, **kwargs):  # type: ignore[no-untyped-def]
                calls[_name if _name != "pending" else f"pending:{args[0]}"] += 1
                return _method(*args, **kwargs)

            setattr(store, name, counted)
        http = httpx.AsyncClient(base_url="https://platform.test", transport=platform(received))
        client = PlatformClient(http, TokenManager(http, "/oauth/token", "gw", SecretStr("s"), None),
                                estate_id="EST-1", gateway_id="GW-1")
        async with Uplink(store, client, UplinkSettings(batch_size=100, concurrency=4), http=http) as uplink:
            await eventually_async(uplink.drained, what="the drain")
            batches = uplink.batches_sent
        newest = (await store.pending(Lane.TELEMETRY, "", 90_000))[-1].id
        assert await store.cursor(Lane.TELEMETRY) == newest  # the last poll
    records = [r for body in received for r in body["records"]]
    # 30 full batches of 100 polls (a stored row is a poll).
    assert batches == len(received) == 30 and len(records) == 3000
    assert sum(len(r["points"]) for r in records) == 90_000 and len({r["id"] for r in records}) == 3000
    assert all(body["contract_version"] == 3 for body in received)
    # One lease read per batch (a poll is never re-read), cursor writes at most one per batch, and the
    # empty alarm lane looked at a few times in the whole drain, not before each of the 30 leases.
    assert calls[f"pending:{Lane.TELEMETRY}"] <= batches + 2
    assert calls["ack"] <= batches
    assert calls[f"pending:{Lane.ALARM}"] < batches / 2
