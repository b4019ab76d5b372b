"""Every record names its estate and gateway, and the platform holds each client to its own.

The real platform simulator over HTTPS, bound by its command line: the default client ``gateway``
reports for EST-A / GW-A, client ``gw-b`` for EST-B / GW-B. A gateway of estate A that logs in
with estate B's client is refused (403 ESTATE_MISMATCH, from the contract's error table): nothing
is stored at the platform, nothing is dropped at the gateway, and the same records go up once the
credentials are right.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from edge.ids import new_id
from edge.records import AlarmRecord, AlarmState, Event, Lane, Reading
from edge.store import Store
from edge.uplink import Uplink
from tests.helpers.config import load
from tests.helpers.platform import PlatformSim, start_platform

T0 = datetime(2026, 11, 1, tzinfo=UTC)
BINDINGS = ("--estate-id", "EST-A", "--gateway-id", "GW-A", "--client", "gw-b:secret-b:EST-B:GW-B")


@pytest.fixture
def bound_platform(tmp_path: Path) -> Iterator[PlatformSim]:
    sim = start_platform(tmp_path / "platform", extra_args=BINDINGS)
    try:
        yield sim
    finally:
        sim.stop()


def estate(tmp: Path, sim: PlatformSim, estate_id: str, gateway_id: str, client_id: str, secret: str):
    tmp.mkdir(parents=True, exist_ok=True)
    return load(tmp, platform_url=sim.url, ca=sim.ca, client_secret=secret,
                extra={"estate": {"id": estate_id, "name": "测试花园", "gateway_id": gateway_id},
                       "platform": {"client_id": client_id, "batch_size": 50}})


async def fill(store: Store) -> None:
    await store.append_readings([Reading("B1-HP-01", "pressure", 0.3, "MPa", T0 + timedelta(seconds=i))
                                 for i in range(20)])
    await store.append_events([Event("fire.lane_blocked", T0, "CAM-1")])
    await store.append_alarm_records([AlarmRecord(new_id(), "device.offline", AlarmState.RAISED, T0, "B1-HP-01")])


async def wait_for(predicate, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_estate_a_records_are_refused_for_estate_b_client_and_kept(tmp_path: Path,
                                                                         bound_platform: PlatformSim) -> None:
    config = estate(tmp_path / "a-as-b", bound_platform, "EST-A", "GW-A", "gw-b", "secret-b")
    async with Store.from_config(config.store) as store:
        await fill(store)
        async with Uplink.from_config(store, config) as uplink:
            await wait_for(lambda: _counted(uplink, "ESTATE_MISMATCH", 3), "three refusals (alarm, event, telemetry)")
            pending = {lane: len(await store.pending(lane, "", 100)) for lane in Lane}
    assert bound_platform.stats()["records"] == {}, "nothing of a refused batch may be stored"
    assert bound_platform.stats()["counters"]["estate_mismatch"] >= 3
    # Held, not dropped: every record still waits in the store, none was dead-lettered.
    assert pending == {Lane.TELEMETRY: 20, Lane.EVENT: 1, Lane.ALARM: 1, Lane.INDICATOR: 0, Lane.DEVICE: 0}
    assert all(state.dead_letters == 0 for state in uplink.lanes.values())

    # The same store, now with estate A's own client: everything goes up, each record naming A.
    right = estate(tmp_path / "a-as-b", bound_platform, "EST-A", "GW-A", "gateway", "test-secret")
    async with Store.from_config(right.store) as store, Uplink.from_config(store, right) as uplink:
        await wait_for(uplink.drained, "the drain")
    records = bound_platform.records()
    assert len(records) == 22
    assert {(r["estate_id"], r["gateway_id"]) for r in records} == {("EST-A", "GW-A")}


async def test_the_refusal_names_code_meaning_and_suggestion(tmp_path: Path, bound_platform: PlatformSim) -> None:
    """A batch of estate B's client carrying an estate A record, straight over HTTPS."""
    async with httpx.AsyncClient(base_url=bound_platform.url, verify=ssl.create_default_context(cafile=str(bound_platform.ca)),
                                 trust_env=False) as c:
        token = (await c.post("/oauth/token", data={"grant_type": "client_credentials"},
                              auth=("gw-b", "secret-b"))).json()["access_token"]
        record = {"id": new_id(), "estate_id": "EST-A", "gateway_id": "GW-A", "device_id": "B1-HP-01",
                  "point": "pressure", "value": 0.3, "unit": "MPa", "quality": "good", "ts": "2026-11-01T00:00:00.000Z"}
        answer = await c.post("/api/v1/ingest/telemetry", headers={"Authorization": f"Bearer {token}",
                                                                   "Idempotency-Key": "k-1"},
                              json={"estate_id": "EST-B", "gateway_id": "GW-B", "kind": "telemetry",
                                    "records": [record]})
        assert answer.status_code == 403
        body = answer.json()
        assert body["code"] == "ESTATE_MISMATCH" and "EST-B" in body["message"] and body["suggestion"]
        assert [e["id"] for e in body["errors"]] == [record["id"]]
        # Estate B's own record goes in under the same client.
        own = {**record, "id": new_id(), "estate_id": "EST-B", "gateway_id": "GW-B"}
        ok = await c.post("/api/v1/ingest/telemetry",
                          headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k-2"},
                          json={"estate_id": "EST-B", "gateway_id": "GW-B", "kind": "telemetry", "records": [own]})
        assert ok.status_code == 200 and ok.json() == {"accepted": 1, "duplicates": 0}
        # A wrong secret is refused in both the contract's and RFC 6749's words.
        refused = await c.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=("gw-b", "nope"))
        assert refused.status_code == 401
        assert refused.json()["code"] == "INVALID_CLIENT" and refused.json()["error"] == "invalid_client"


async def _counted(uplink: Uplink, code: str, times: int) -> bool:
    return uplink.client.error_codes.get(code, 0) >= times
