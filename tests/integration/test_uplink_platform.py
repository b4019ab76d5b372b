"""The uplink against the real platform simulator over HTTPS: every failure mode of seed 000 7.2."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.ids import new_id
from edge.records import AlarmRecord, AlarmState, Event, Lane, Quality, Reading
from edge.store import Store
from edge.uplink import BreakerState, Uplink
from tests.helpers.config import load
from tests.helpers.platform import PlatformSim
from tests.helpers.sql import sql_rows
from tests.helpers.waiting import eventually

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def readings(n: int, device: str = "B1-EM-01", start: int = 0) -> list[Reading]:
    return [Reading(device, "energy_import", float(start + i), "kWh", T0 + timedelta(seconds=start + i))
            for i in range(n)]


async def drain(uplink: Uplink, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await uplink.drained():
        if time.monotonic() > deadline:
            raise AssertionError(f"uplink did not drain in {timeout} s: {uplink.status()}")
        await asyncio.sleep(0.05)


@pytest.fixture
def config(tmp_path: Path, platform_sim: PlatformSim):
    return load(tmp_path, platform_url=platform_sim.url, ca=platform_sim.ca,
                extra={"platform": {"client_secret": "!secret platform_client_secret", "batch_size": 100}})


async def test_everything_arrives_once_with_alarms_and_evidence(config, platform_sim: PlatformSim) -> None:
    async with Store.from_config(config.store) as store:
        await store.append_readings(readings(250))
        await store.append_alarm_records([AlarmRecord(new_id(), "fire.hydrant_pressure_low", AlarmState.RAISED, T0,
                                                      "B1-HP-01", message="水压低")])
        await store.append_events([Event("fire.lane_blocked", T0, "CAM-1", evidence=b"\xff\xd8fake-jpeg\xff\xd9")])
        async with Uplink.from_config(store, config) as uplink:
            await drain(uplink)
    stats = platform_sim.stats()
    assert stats["records"] == {"telemetry": 250, "alarm": 1, "event": 1}
    assert stats["counters"]["records_duplicate"] == 0
    event = platform_sim.records("event")[0]
    assert event["evidence"]["content_type"] == "image/jpeg" and event["evidence"]["bytes"] == 13
    with platform_sim.http() as c:  # the picture went up once, by its SHA-256
        assert c.get(f"/_sim/evidence/{event['evidence']['id']}").content == b"\xff\xd8fake-jpeg\xff\xd9"
    alarm = platform_sim.records("alarm")[0]
    assert alarm["message"] == "水压低" and alarm["state"] == "raised"


async def test_token_refreshed_on_401(config, platform_sim: PlatformSim) -> None:
    async with Store.from_config(config.store) as store:
        await store.append_readings(readings(100))
        async with Uplink.from_config(store, config) as uplink:
            await drain(uplink)
            platform_sim.faults(expire_tokens=True)
            await store.append_readings(readings(100, start=100))
            uplink.wake()
            await drain(uplink)
            assert uplink.client.error_codes.get("UNAUTHORIZED") == 1
    stats = platform_sim.stats()
    assert stats["counters"]["tokens_issued"] == 2
    assert stats["records"]["telemetry"] == 200


async def test_retry_after_is_honoured(config, platform_sim: PlatformSim) -> None:
    platform_sim.faults(rate_limit=1, retry_after_s=1.5)
    async with Store.from_config(config.store) as store:
        await store.append_readings(readings(50))
        started = time.monotonic()
        async with Uplink.from_config(store, config) as uplink:
            await drain(uplink)
            elapsed = time.monotonic() - started
            assert uplink.client.error_codes.get("RATE_LIMITED") == 1
    # Backoff alone would retry within 0.05 s; the platform asked for 1.5 s.
    assert elapsed >= 1.5
    assert platform_sim.stats()["records"]["telemetry"] == 50


async def test_breaker_opens_during_outage_probes_and_closes(config, platform_sim: PlatformSim) -> None:
    platform_sim.faults(outage=True)
    async with Store.from_config(config.store) as store:
        await store.append_readings(readings(300))
        async with Uplink.from_config(store, config) as uplink:
            deadline = time.monotonic() + 10
            while uplink.breaker.state is not BreakerState.OPEN and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert uplink.breaker.state is BreakerState.OPEN
            refused_when_open = platform_sim.stats()["counters"]["outage_refusals"]
            # Open means fail fast: nothing new starts while open but the half-open probe. Requests that
            # were already past the breaker when it opened (one per other worker) still finish; under a
            # loaded machine they arrive after the count above.
            await asyncio.sleep(0.3)  # a window in which an open breaker must stay quiet: time is what is tested
            in_flight = config.platform.concurrency - 1
            assert platform_sim.stats()["counters"]["outage_refusals"] <= refused_when_open + in_flight + 1
            platform_sim.faults()  # platform back
            await drain(uplink)
            assert uplink.breaker.state is BreakerState.CLOSED
            assert uplink.breaker.times_opened >= 1
    assert platform_sim.stats()["records"]["telemetry"] == 300


async def test_invalid_record_is_dead_lettered_and_the_rest_flows(config, platform_sim: PlatformSim) -> None:
    platform_sim.faults(reject_device_ids=["UNREGISTERED-1"])
    async with Store.from_config(config.store) as store:
        batch = readings(40) + readings(2, device="UNREGISTERED-1", start=40) + readings(40, start=42)
        await store.append_readings(batch)
        async with Uplink.from_config(store, config) as uplink:
            await drain(uplink)
        dead = await sql_rows(store, "SELECT lane, record_id, code, message FROM dead_letter ORDER BY record_id")
        assert len(dead) == 2
        assert all(d[0] == "telemetry" and d[2] == "VALIDATION_FAILED" for d in dead)
        assert "UNREGISTERED-1 is not registered" in dead[0][3]
        assert await store.counter("uplink.dead_letters") == 2
    delivered = platform_sim.records("telemetry")
    assert len(delivered) == 80
    assert {r["device_id"] for r in delivered} == {"B1-EM-01"}


async def test_dropped_connection_after_body_is_retried_without_double_count(config, platform_sim: PlatformSim) -> None:
    platform_sim.faults(drop_after_body=2)
    async with Store.from_config(config.store) as store:
        await store.append_readings(readings(300))
        async with Uplink.from_config(store, config) as uplink:
            await drain(uplink)
            assert uplink.failures >= 2
    stats = platform_sim.stats()
    assert stats["counters"]["dropped_connections"] == 2
    assert stats["counters"]["replayed_batches"] >= 1
    ids = [r["id"] for r in platform_sim.records("telemetry")]
    assert len(ids) == 300 and len(set(ids)) == 300


async def test_tls_verification_is_on_by_default(tmp_path: Path, platform_sim: PlatformSim) -> None:
    config = load(tmp_path, platform_url=platform_sim.url, ca=None)  # no CA bundle: self-signed must fail
    async with Store.from_config(config.store) as store:
        await store.append_readings(readings(5))
        async with Uplink.from_config(store, config) as uplink:
            await eventually(lambda: uplink.last_error is not None, what="the first refused connection")
            assert not await uplink.drained()
            assert uplink.last_error is not None and "CERTIFICATE_VERIFY_FAILED" in uplink.last_error
    assert platform_sim.stats()["records"] == {}


async def test_alarm_lane_overtakes_a_telemetry_backlog(config, platform_sim: PlatformSim) -> None:
    platform_sim.faults(slow_ms=50)
    async with Store.from_config(config.store) as store:
        await store.append_readings(readings(3000))
        async with Uplink.from_config(store, config) as uplink:
            await eventually(lambda: bool(platform_sim.stats()["records"].get("telemetry")), what="telemetry flowing")
            await store.append_alarm_records([AlarmRecord(new_id(), "fire.hydrant_pressure_low", AlarmState.RAISED,
                                                          T0, "B1-HP-01")])
            uplink.wake()
            await drain(uplink, timeout=60)
    order = [r["kind"] for r in platform_sim.records()]
    alarm_at = order.index("alarm")
    # At most the batches already in flight (concurrency x batch size) went before the alarm.
    assert Counter(order[:alarm_at])["telemetry"] < 3000
    assert order.count("telemetry") == 3000
    assert Lane.ALARM.value == "alarm"


async def test_2xx_that_does_not_account_for_the_batch_is_not_an_ack(config, platform_sim: PlatformSim) -> None:
    """Issue 10 defect 1: a 200 with HTML, truncated JSON or a wrong count once advanced the cursor and lost records.

    Between correct answers the platform answers 2xx with a captive portal's HTML page (nothing stored),
    a truncated JSON body (stored) and a count one short (stored). Every record must still arrive, exactly
    once, and the store must know nothing was acknowledged by those answers.
    """
    platform_sim.faults(ack_html=2, ack_truncated=2, ack_wrong_count=2)
    async with Store.from_config(config.store) as store:
        await store.append_readings(readings(900))
        async with Uplink.from_config(store, config) as uplink:
            await drain(uplink, timeout=60)
            assert uplink.client.error_codes.get("BAD_ACK") == 6
            assert uplink.failures >= 6
    stats = platform_sim.stats()
    assert {k: stats["counters"].get(k) for k in ("injected_ack_html", "injected_ack_truncated",
                                                  "injected_ack_wrong_count")} == dict.fromkeys(
        ("injected_ack_html", "injected_ack_truncated", "injected_ack_wrong_count"), 2)
    ids = [r["id"] for r in platform_sim.records("telemetry")]
    assert len(ids) == 900 and len(set(ids)) == 900


async def test_slow_replies_time_out_and_are_resent_without_duplicates(tmp_path: Path, platform_sim: PlatformSim) -> None:
    """A platform slower than the gateway's timeout: the request times out, is resent under the same key, and
    the platform (which may still store a batch after the gateway gave up on it) counts every record once."""
    config = load(tmp_path, platform_url=platform_sim.url, ca=platform_sim.ca,
                  extra={"platform": {"client_secret": "!secret platform_client_secret", "batch_size": 100,
                                      "timeout_s": 0.3}})
    platform_sim.faults(slow_ms=600)
    async with Store.from_config(config.store) as store:
        await store.append_readings(readings(300))
        async with Uplink.from_config(store, config) as uplink:
            deadline = time.monotonic() + 20
            while uplink.failures < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert uplink.failures >= 2 and "Timeout" in (uplink.last_error or "")
            platform_sim.faults()  # the platform is fast again
            await drain(uplink)
    ids = [r["id"] for r in platform_sim.records("telemetry")]
    assert len(ids) == 300 and len(set(ids)) == 300


async def test_one_picture_on_event_and_alarm_goes_up_once(config, platform_sim: PlatformSim) -> None:
    """Evidence by reference (issue 13 point 7): the event and the alarm step share one upload of the JPEG."""
    jpeg = b"\xff\xd8" + bytes(range(256)) * 400 + b"\xff\xd9"  # ~100 kB, like a camera frame
    async with Store.from_config(config.store) as store:
        await store.append_events([Event("fire.ebike_entry", T0, "CAM-1", evidence=jpeg)])
        await store.append_alarm_records([AlarmRecord(new_id(), "fire.ebike_entry", AlarmState.RAISED, T0, "CAM-1",
                                                      evidence=jpeg)])
        async with Uplink.from_config(store, config) as uplink:
            await drain(uplink)
    event, alarm = platform_sim.records("event")[0], platform_sim.records("alarm")[0]
    assert event["evidence"] == alarm["evidence"] and event["evidence"]["bytes"] == len(jpeg)
    counters = platform_sim.stats()["counters"]
    assert counters["evidence_uploads"] == 1 and counters.get("evidence_duplicates", 0) == 0
    assert counters["evidence_bytes"] == len(jpeg)
    with platform_sim.http() as c:
        assert c.get(f"/_sim/evidence/{event['evidence']['id']}").content == jpeg
    # The records themselves stay small: the picture is not inside them.
    import json

    assert len(json.dumps(event)) < 2000 and len(json.dumps(alarm)) < 2000


async def test_report_by_exception_uploads_only_news_and_never_filters_alarms(tmp_path: Path,
                                                                              platform_sim: PlatformSim) -> None:
    """Installer option (issue 13 point 9), off by default: a steady point goes up on change, on a quality
    change or every max_interval_s; the store keeps every reading; alarms and events always go up."""
    config = load(tmp_path, platform_url=platform_sim.url, ca=platform_sim.ca, extra={"platform": {
        "client_secret": "!secret platform_client_secret",
        "report_by_exception": {"enabled": True, "deadband": {"pressure": 0.01}, "max_interval_s": 60}}})
    # 0.30 for 50 s, a 0.305 wobble (inside the 0.01 band) for 10 s, then 0.25 for 40 s, then a bad reading.
    values = [0.30] * 50 + [0.305] * 10 + [0.25] * 40
    batch = [Reading("B1-HP-01", "pressure", v, "MPa", T0 + timedelta(seconds=i)) for i, v in enumerate(values)]
    batch.append(Reading("B1-HP-01", "pressure", 0.25, "MPa", T0 + timedelta(seconds=100), Quality.BAD))
    async with Store.from_config(config.store) as store:
        await store.append_readings(batch)
        await store.append_alarm_records([AlarmRecord(new_id(), "fire.hydrant_pressure_low", AlarmState.RAISED, T0,
                                                      "B1-HP-01")])
        await store.append_events([Event("fire.lane_blocked", T0, "CAM-1") for _ in range(3)])
        async with Uplink.from_config(store, config) as uplink:
            await drain(uplink)
            assert uplink.report_by_exception is not None
            held = uplink.report_by_exception.held
        kept_in_store = len(await sql_rows(store, "SELECT id FROM readings"))
    sent = [(r["ts"][11:19], r["value"], r["quality"]) for r in platform_sim.readings()]
    assert sent == [("00:00:00", 0.3, "good"), ("00:01:00", 0.25, "good"), ("00:01:40", 0.25, "bad")]
    assert held == len(batch) - 3 and kept_in_store == len(batch)  # held back from the upload only
    assert platform_sim.stats()["records"] == {"telemetry": 3, "alarm": 1, "event": 3}


async def test_a_poll_goes_up_as_one_record_and_the_platform_counts_its_readings(config, platform_sim: PlatformSim) -> None:
    """Contract v3 (issue 13 point 9): one record per device poll, each point with its own value, unit and
    quality; the record's id is its first reading's, so a second gateway run resends under the same ids."""
    points = [("energy_import", 1234.5, "kWh", Quality.GOOD), ("power_active", 2850.0, "W", Quality.GOOD),
              ("volume_forward", 12.5, "m³", Quality.UNCERTAIN), ("voltage_a", float("inf"), "V", Quality.BAD)]
    polls = [[Reading(f"EM-{d}", p, v, u, T0 + timedelta(seconds=s), q) for p, v, u, q in points]
             for s in range(5) for d in range(3)]
    async with Store.from_config(config.store) as store:
        ids = [await store.append_readings(poll) for poll in polls]
        async with Uplink.from_config(store, config) as uplink:
            await drain(uplink)
        records = platform_sim.records("telemetry")
        assert [r["id"] for r in records] == [poll_ids[0] for poll_ids in ids]
        first = records[0]
        assert first["device_id"] == "EM-0" and first["ts"] == "2026-11-01T00:00:00.000Z"
        assert first["points"] == [
            {"point": "energy_import", "value": 1234.5, "unit": "kWh", "quality": "good"},
            {"point": "power_active", "value": 2850.0, "unit": "W", "quality": "good"},
            {"point": "volume_forward", "value": 12.5, "unit": "m3", "quality": "uncertain"},
            {"point": "voltage_a", "value": None, "unit": "V", "quality": "bad"}]
        stats = platform_sim.stats()
        assert stats["records"]["telemetry"] == 15 and stats["readings"]["telemetry"] == 60
        assert len(platform_sim.readings()) == 60 and len(platform_sim.readings("EM-2")) == 20
        # Everything again from the start (as after a crash before any ack): the same records under the same
        # ids (and so the same batch keys), which the platform answers from its replay memory, counting nothing.
        async with Uplink.from_config(store, config) as uplink:
            uplink.lanes[Lane.TELEMETRY].reset_to("")
            await eventually(lambda: uplink.lanes[Lane.TELEMETRY].sent_records == 15, what="the polls resent")
    stats = platform_sim.stats()
    assert stats["readings"]["telemetry"] == 60 and stats["records"]["telemetry"] == 15
    assert stats["counters"]["records_accepted"] == 15 and stats["counters"].get("replayed_batches", 0) >= 1


def test_the_platform_still_reads_a_v2_batch(platform_sim: PlatformSim) -> None:
    """An older gateway (contract v2: no contract_version, one reading per telemetry record) is still understood."""
    with platform_sim.http() as c:
        token = c.post("/oauth/token", data={"grant_type": "client_credentials"},
                       auth=(platform_sim.client_id, platform_sim.client_secret)).json()["access_token"]
        reading = {"id": new_id(), "estate_id": "EST-TEST-01", "gateway_id": "GW-TEST-01", "device_id": "OLD-1",
                   "point": "pressure", "value": 0.3, "unit": "MPa", "quality": "good", "ts": "2026-11-01T00:00:00.000Z"}
        body = {"estate_id": "EST-TEST-01", "gateway_id": "GW-TEST-01", "kind": "telemetry", "records": [reading]}
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "v2-batch-1"}
        answer = c.post("/api/v1/ingest/telemetry", json=body, headers=headers)
        assert answer.status_code == 200 and answer.json() == {"accepted": 1, "duplicates": 0}
        v3_shaped = {**body, "records": [{**reading, "id": new_id()}], "contract_version": 3}
        refused = c.post("/api/v1/ingest/telemetry", json=v3_shaped, headers={**headers, "Idempotency-Key": "v3-1"})
        assert refused.status_code == 422 and "points" in refused.text
        unknown = c.post("/api/v1/ingest/telemetry", json={**body, "contract_version": 7},
                         headers={**headers, "Idempotency-Key": "v7-1"})
        assert unknown.status_code == 400 and unknown.json()["code"] == "BAD_ENVELOPE"
    assert platform_sim.readings("OLD-1") == [{**{k: reading[k] for k in ("id", "device_id", "point", "value", "unit",
                                                                          "quality", "ts")}, "seq": 1}]
