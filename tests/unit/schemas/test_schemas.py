"""The upload contract: every payload the store's codec and the uplink's grouping produce validates;
broken ones are named; released versions stay as released."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from edge import schemas
from edge.clock import ManualClock
from edge.records import (
    AlarmRecord,
    AlarmState,
    DeviceRecord,
    Event,
    IndicatorRecord,
    Lane,
    Quality,
    Reading,
    Severity,
)
from edge.store import Store, codec

T0 = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"
ORIGIN = {"estate_id": "EST-1", "gateway_id": "GW-1"}


@pytest.fixture
async def payloads(tmp_path: Path) -> dict[str, list[dict]]:
    """Real payloads: records go through the real store and come back out of its outbox."""
    async with Store(tmp_path / "edge.db", clock=ManualClock(T0), batch_max_delay_ms=1) as store:
        await store.append_readings([
            Reading("EM-1", "energy_import", 1234.5, "kWh", T0),
            Reading("PT-1", "pressure", 0.31, "MPa", T0, Quality.UNCERTAIN),
            Reading("PT-2", "pressure", float("-1e9"), "MPa", T0 + timedelta(microseconds=7), Quality.BAD),
        ])
        await store.append_events([
            Event("fire.lane_blocked", T0, "CAM-1", Severity.MAJOR, "车辆占用消防通道", {"lane": "L1"}, JPEG),
            Event("store.eviction", T0, None, Severity.WARNING, "quota", {"count": 3}),
        ])
        alarm_id = "01JNB7Q0000000000000000000"
        await store.append_alarm_records([
            AlarmRecord(alarm_id, "fire.hydrant_pressure_low", AlarmState.RAISED, T0, "PT-1", Severity.CRITICAL,
                        message="压力低", data={"value": 0.05}),
            AlarmRecord(alarm_id, "fire.hydrant_pressure_low", AlarmState.ACKNOWLEDGED, T0, "PT-1", actor="wang"),
            AlarmRecord(alarm_id, "fire.hydrant_pressure_low", AlarmState.ESCALATED, T0, "PT-1",
                        data={"level": 1, "unacknowledged_min": 15}),
            AlarmRecord(alarm_id, "fire.hydrant_pressure_low", AlarmState.RESOLVED, T0, "PT-1", actor="wang",
                        note="阀门已打开"),
            AlarmRecord(alarm_id, "fire.hydrant_pressure_low", AlarmState.CLEARED, T0, "PT-1", evidence=JPEG),
        ])
        await store.append_indicators([
            IndicatorRecord("EST-1", "GW-1", "energy.electricity_kwh", "hour", T0, T0 + timedelta(hours=1), 12.5,
                            "kWh", 60, 1.0, ("004 8.4.8", "002 5.3.4.2"), {"sub_item": "lifts"}, 2, T0),
            IndicatorRecord("EST-1", "GW-1", "fire.lane_clear_time_p50", "day", T0, T0 + timedelta(days=1), None,
                            "min", 0, 0.0, ("004 8.3.5",), {}, 1, None),
        ])
        await store.append_devices([
            DeviceRecord("PT-1", 1, T0, {"name": "消火栓压力", "category": "fire_pressure", "kind": "pressure_transmitter",
                                         "profile": "generic_rs485_pressure", "role": "most_unfavourable_point",
                                         "location": {"building": "2栋", "unit": None, "floor": "B1", "room": None},
                                         "thresholds": {"pressure": {"low": 0.07, "high": None, "hysteresis": 0.01,
                                                                     "min_duration_s": 30.0, "valid_min": 0.0,
                                                                     "valid_max": 1.6, "unit": "MPa"}},
                                         "enabled": True, "removed": False}),
        ])
        out = {}
        for lane in Lane:
            # Telemetry is stored one row per poll; the uplink stamps each record with its estate and
            # gateway as it leaves (Uplink._send).
            out[lane.value] = await _outgoing(store, lane)
    return out


async def _outgoing(store: Store, lane: Lane) -> list[dict]:
    rows = await store.pending(lane, "", 100)
    return [{**codec.plain(row.payload), **ORIGIN} for row in rows]


async def test_every_codec_payload_validates(payloads: dict[str, list[dict]]) -> None:
    counts = {kind: len(rows) for kind, rows in payloads.items()}
    assert counts == {"telemetry": 3, "event": 2, "alarm": 5, "indicator": 2, "device": 1}
    for kind, rows in payloads.items():
        for payload in rows:
            assert schemas.record_errors(kind, payload) == [], (kind, payload)
        envelope = {"contract_version": 3, "gateway_id": "GW-1", "estate_id": "EST-1", "kind": kind,
                    "sent_at": "2025-03-01T00:00:01.000Z", "records": rows}
        schemas.validate_batch(envelope)
    assert "evidence" in payloads["event"][0] and "evidence" in payloads["alarm"][-1]


@pytest.mark.parametrize("kind", schemas.KINDS)
def test_schema_files_are_valid_draft_2020_12(kind: str) -> None:
    document = schemas.schema(kind)
    jsonschema.Draft202012Validator.check_schema(document)
    jsonschema.Draft202012Validator.check_schema(schemas.common_schema())
    assert document["$id"] == f"urn:estate-edge:schema:v{schemas.SCHEMA_VERSION}:{kind}"


async def test_broken_payloads_are_named(payloads: dict[str, list[dict]]) -> None:
    poll = copy.deepcopy(payloads["telemetry"][0])
    poll["points"][0]["quality"] = "meh"
    poll["ts"] = "2025-03-01 08:00:00+08:00"  # local time, no Z: refused
    del poll["points"][0]["unit"]
    errors = schemas.record_errors("telemetry", poll)
    text = "\n".join(errors)
    assert "$.points[0].quality" in text and "$.ts" in text and "unit" in text
    assert any("$.points" in e for e in schemas.record_errors("telemetry", {**poll, "points": []}))

    resolved = copy.deepcopy(payloads["alarm"][3])
    assert resolved["state"] == "resolved"
    resolved["note"] = ""
    assert any("$.note" in e for e in schemas.record_errors("alarm", resolved))

    indicator = copy.deepcopy(payloads["indicator"][0])
    indicator["coverage"] = 1.5
    indicator["version"] = 0
    indicator["clauses"] = []
    text = "\n".join(schemas.record_errors("indicator", indicator))
    assert "$.coverage" in text and "$.version" in text and "$.clauses" in text

    event = copy.deepcopy(payloads["event"][0])
    event["id"] = "not-a-ulid"
    event["surprise"] = 1
    with pytest.raises(schemas.SchemaError) as info:
        schemas.validate("event", event)
    assert info.value.kind == "event" and any("$.id" in e for e in info.value.errors)
    assert any("surprise" in e for e in info.value.errors)


async def test_batch_envelope_checks_records_by_kind(payloads: dict[str, list[dict]]) -> None:
    good = payloads["alarm"]
    # Alarm records sent under kind=telemetry are refused, record by record.
    errors = schemas.record_errors("batch", {"contract_version": 3, "gateway_id": "GW-1", "estate_id": "EST-1",
                                             "kind": "telemetry", "records": good[:2]})
    assert errors and all(e.startswith("$.records[") for e in errors)
    too_many = {"contract_version": 3, "gateway_id": "GW-1", "estate_id": "EST-1", "kind": "alarm",
                "records": good * 201}
    assert any("$.records" in e for e in schemas.record_errors("batch", too_many))
    assert schemas.record_errors("batch", {"contract_version": 3, "gateway_id": "GW-1", "estate_id": "EST-1",
                                           "kind": "alarm", "records": good}) == []
    # A v3 envelope names its version; without it, it is a v2 batch (v2 schemas) and invalid as v3.
    unversioned = {"gateway_id": "GW-1", "estate_id": "EST-1", "kind": "alarm", "records": good}
    assert any("contract_version" in e for e in schemas.record_errors("batch", unversioned))
    assert schemas.envelope_version(unversioned) == 2 and schemas.envelope_version({"contract_version": 9}) == 0


def test_unknown_kind_and_schema_copies() -> None:
    with pytest.raises(KeyError, match="known"):
        schemas.record_errors("readings", {})
    first = schemas.schema("alarm")
    first["properties"].clear()
    assert schemas.schema("alarm")["properties"], "schema() must hand out copies"


def test_every_example_in_the_uplink_doc_validates() -> None:
    """docs/uplink.md shows one example per record kind; each must be valid under its schema."""
    import json
    import re

    doc = (Path(__file__).resolve().parents[3] / "docs" / "uplink.md").read_text(encoding="utf-8")
    examples = re.findall(r"<!-- example: (\w+) \w+ -->\s*```json\n(.*?)```", doc, flags=re.S)
    kinds = sorted({kind for kind, _ in examples})
    assert kinds == ["alarm", "batch", "device", "event", "indicator", "telemetry"]
    for kind, text in examples:
        assert schemas.record_errors(kind, json.loads(text)) == [], (kind, text)


def test_the_uplink_doc_is_generated_from_the_code() -> None:
    """Examples, the error table and the message table of docs/uplink.md are the code's (edge.schemas.doc)."""
    from edge.schemas.doc import main

    assert main(["--check", str(Path(__file__).resolve().parents[3] / "docs" / "uplink.md")]) == 0, (
        "docs/uplink.md is stale: run python -m edge.schemas.doc docs/uplink.md")


async def test_messages_and_units_in_payloads(tmp_path: Path) -> None:
    """message_code and params are lifted out of the stored data; units and data timestamps are ASCII / Z."""
    from edge.messages import say

    async with Store(tmp_path / "edge.db", clock=ManualClock(T0), batch_max_delay_ms=1) as store:
        await store.append_readings([Reading("WM-1", "volume_forward", 12.5, "m³", T0),
                                     Reading("TT-1", "temperature", 21.5, "°C", T0)])
        text = say("threshold.high", device="TT-1", point="temperature", value=31.0, unit="°C", limit=30, held_s=60)
        await store.append_alarm_records([AlarmRecord("01JNB7Q0000000000000000000", "hvac.temperature_high",
                                                      AlarmState.RAISED, T0, "TT-1", data={"unit": "°C"}, **text)])
        await store.append_events([Event("store.eviction", T0, data={"count": 3}, **say("store.eviction", count=3,
                                                                                          lane="telemetry"))])
        telemetry = [{k: v for k, v in r.items() if k not in ORIGIN} for r in await _outgoing(store, Lane.TELEMETRY)]
        (alarm,) = [row.payload for row in await store.pending(Lane.ALARM, "", 10)]
        (event,) = [row.payload for row in await store.pending(Lane.EVENT, "", 10)]
    assert [p["unit"] for t in telemetry for p in t["points"]] == ["m3", "degC"]
    assert alarm["message_code"] == "threshold.high" and alarm["params"]["unit"] == "degC"
    assert alarm["data"] == {"unit": "degC"} and "温度高于 30 °C" in alarm["message"]
    assert event["message_code"] == "store.eviction" and event["params"] == {"count": 3, "lane": "telemetry"}
    assert event["data"] == {"count": 3} and event["message"] == "存储空间不足：已移除最早的 3 条遥测数据"
    for kind, payload in (("telemetry", telemetry[0]), ("alarm", alarm), ("event", event)):
        assert schemas.record_errors(kind, {**payload, **ORIGIN}) == [], kind
    # Without its estate and gateway a v2 record is invalid.
    assert any("estate_id" in e for e in schemas.record_errors("event", event))


def test_released_versions_stay_as_released() -> None:
    """A released contract version is never edited: v1 has no estate per record, v2 one reading per record."""
    import json
    from importlib import resources

    v1 = json.loads(resources.files("edge.schemas.v1").joinpath("telemetry.json").read_text(encoding="utf-8"))
    assert v1["$id"] == "urn:estate-edge:schema:v1:telemetry" and "estate_id" not in v1["properties"]
    v2 = schemas.schema("telemetry", version=2)
    assert v2["$id"] == "urn:estate-edge:schema:v2:telemetry" and "point" in v2["required"]
    assert "contract_version" not in schemas.schema("batch", version=2)["properties"]
    assert schemas.SCHEMA_VERSION == 3 and schemas.schema("telemetry")["required"][-1] == "points"
    # An older gateway's v2 reading is still a valid v2 record, and not a v3 one.
    reading = {"id": "01JNB8Q3W6P2XEWCC30CGHXJ3A", **ORIGIN, "device_id": "PT-1", "point": "pressure",
               "value": 0.3, "unit": "MPa", "quality": "good", "ts": "2025-03-01T00:00:00.000Z"}
    assert schemas.record_errors("telemetry", reading, version=2) == []
    assert schemas.record_errors("telemetry", reading)
    with pytest.raises(KeyError, match="v1"):
        schemas.record_errors("device", {}, version=1)


def test_timestamps_are_exact_utc_milliseconds_with_z() -> None:
    """codec.iso (one call per reading on the drain) writes what datetime.isoformat would, exactly."""
    import random

    from edge.store.codec import iso

    rng = random.Random(13)
    samples = [0, 999, 1_000, 1_740_787_260_999_999, 1_740_787_261_000_000, 4_102_444_799_999_999]
    samples += [rng.randrange(0, 4_102_444_800_000_000) for _ in range(5000)]
    for us in samples:
        exact = datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)
        assert iso(us) == exact.isoformat(timespec="milliseconds").replace("+00:00", "Z"), us
    assert iso(1_740_787_260_999_999) == "2025-03-01T00:01:00.999Z"  # truncated, never rounded up
