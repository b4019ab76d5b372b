"""``docs/uplink.md`` from the code: its examples, its error table and its message table are generated.

The page is prose written by people with marked regions this module fills in, so the contract's
document cannot drift from what the gateway sends:

* ``<!-- example: <kind> <name> -->`` followed by a JSON block: the example ``<name>`` of ``EXAMPLES``,
  built by the real codec from real records (``edge.store.codec``) with messages from the real
  catalogue (``edge.messages``), stamped with estate and gateway as the uplink stamps them;
* ``<!-- generated: errors -->`` ... ``<!-- /generated -->``: the error table (``edge.schemas.errors``);
* ``<!-- generated: messages -->`` ... ``<!-- /generated -->``: every message code in zh-CN and en.

Run ``python -m edge.schemas.doc docs/uplink.md`` after changing any of them; ``--check`` exits 1
when the page is stale (``tests/unit/schemas`` runs the check).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edge import messages
from edge.clock import to_us
from edge.records import AlarmRecord, AlarmState, DeviceRecord, Event, IndicatorRecord, Quality, Reading, Severity
from edge.schemas import SCHEMA_VERSION
from edge.schemas.errors import markdown_table
from edge.store import codec

ESTATE, GATEWAY = "EST-310115-0001", "GW-310115-0001-01"
ORIGIN = {"estate_id": ESTATE, "gateway_id": GATEWAY}
LABELS = {"B1-HP-01": "1栋 消火栓压力 B1-HP-01", "CAM-LANE-01": "3栋北侧 摄像机 CAM-LANE-01"}
T = datetime(2025, 2, 28, 18, 1, tzinfo=UTC)
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 300 + b"\xff\xd9"  # stands in for a 77 kB camera frame


def _stamp(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as it leaves the gateway: id first, then estate and gateway, then the rest."""
    out = {"id": payload["id"], **ORIGIN}
    out.update((k, v) for k, v in payload.items() if k != "id")
    return out


def _poll(readings: list[Reading], poll_id: str) -> dict[str, Any]:
    """One poll's readings through the store's codec, as they leave the gateway."""
    ((rid, device_id, ts_us, _n, _shape, points),), _shapes = codec.poll_rows(readings, lambda n: [poll_id] * n, {})
    return _stamp(codec.plain(codec.telemetry_payload((rid, device_id, ts_us, points))))


def _telemetry() -> dict[str, Any]:
    points = (("energy_import", 10234.5, "kWh", Quality.GOOD), ("power_active", 2850.0, "W", Quality.GOOD),
              ("voltage_a", 229.8, "V", Quality.GOOD), ("current_a", 12.41, "A", Quality.GOOD))
    return _poll([Reading("B1-EM-01", point, value, unit, T, quality) for point, value, unit, quality in points],
                 "01JNB8Q3W6P2XEWCC30CGHXJ3A")


def _meter_telemetry() -> dict[str, Any]:
    return _poll([Reading("B1-WM-01", "volume_forward", 1234.567, "m³", T, Quality.GOOD),
                  Reading("B1-WM-01", "flow", float("nan"), "m³/h", T, Quality.BAD)],  # no usable value: null
                 "01JNB8Q3W6P2XEWCC30CGHXJ3E")


def _event_lane() -> dict[str, Any]:
    event = Event("fire.lane_blocked", T + timedelta(hours=8), "CAM-LANE-01", Severity.MAJOR,
                  data={"camera": "CAM-LANE-01", "zone": "north-lane", "zone_name": "3栋北侧消防通道",
                        "lane": "CAM-LANE-01/north-lane", "active": True, "track_id": 17, "label": "car",
                        "score": 0.83, "dwell_s": 125.0},
                  **messages.say("fire.lane_blocked", camera="CAM-LANE-01", zone="3栋北侧消防通道", dwell_s=125))
    return _stamp(codec.event_payload(codec.event_row(event, "01JNB9A2RC5G3EAH02SKQDD2V7", None), JPEG))


def _event_clock() -> dict[str, Any]:
    event = Event("gateway.clock_jump", datetime(2025, 3, 1, 4, 10, 2, tzinfo=UTC), None, Severity.WARNING,
                  data={"source": "platform", "offset_s": 7200.912, "window_start": "2025-03-01T04:09:52.000Z",
                        "window_end": "2025-03-01T04:10:02.000Z",
                        "first_id_exclusive": "01JNBD6ZQ4SBXGDJKGAMG92J8A", "last_id": "01JNBD7K9X26D6TES2JSG8WYVZ",
                        "flagged": {"telemetry": 12, "event": 0, "alarm": 1}},
                  **messages.say("gateway.clock_differs", offset_s=7200.9))
    return _stamp(codec.event_payload(codec.event_row(event, "01JNBD7K9X26D6TES2JSG8WYVZ", None), None))


def _alarm_raised() -> dict[str, Any]:
    record = AlarmRecord("01JNB8Q3WG5J06ZWJ6NV0CV5FF", "fire.hydrant_pressure_low", AlarmState.RAISED, T,
                         "B1-HP-01", Severity.CRITICAL,
                         data={"value": 0.05, "unit": "MPa", "limit": 0.07, "hysteresis": 0.01, "min_duration_s": 30.0,
                               "since": "2025-02-28T18:00:30.000Z", "subject": "B1-HP-01", "point": "pressure"},
                         **messages.say("threshold.low", device="B1-HP-01", point="pressure", value=0.05, unit="MPa",
                                        limit=0.07, held_s=30))
    return _stamp(codec.alarm_payload(codec.alarm_row(record, "01JNB8Q3WG5J06ZWJ6NV0CV5FG", None), None))


def _alarm_resolved() -> dict[str, Any]:
    record = AlarmRecord("01JNB8Q3WG5J06ZWJ6NV0CV5FF", "fire.hydrant_pressure_low", AlarmState.RESOLVED,
                         T + timedelta(minutes=49), "B1-HP-01", Severity.CRITICAL, actor="wang",
                         note="稳压泵故障复位，压力恢复 0.32 MPa", data={"subject": "B1-HP-01", "point": "pressure"},
                         **messages.say("alarm.resolved", actor="wang"))
    return _stamp(codec.alarm_payload(codec.alarm_row(record, "01JNBAJ5ZG5J06ZWJ6NV0CV5FH", None), None))


def _indicator() -> dict[str, Any]:
    record = IndicatorRecord(ESTATE, GATEWAY, "energy.electricity_kwh", "hour", T.replace(minute=0),
                             T.replace(minute=0) + timedelta(hours=1), 6.0, "kWh", 1, 1.0, ("004 8.4.8", "002 5.3.4.2"),
                             {"sub_item": "lifts"}, 2, datetime(2025, 2, 28, 20, 42, tzinfo=UTC))
    return codec.indicator_payload(record, "01JNBC1X2J1ZGFKKZEBF5S3BS2")


def _device(removed: bool = False) -> dict[str, Any]:
    info = {"name": "消火栓压力", "category": "fire_pressure", "kind": "pressure_transmitter",
            "profile": "generic_rs485_pressure", "location": {"building": "1栋", "unit": None, "floor": "顶层", "room": None},
            "role": "most_unfavourable_point",
            "thresholds": {"pressure": {"low": 0.07, "high": None, "hysteresis": 0.01, "min_duration_s": 30.0,
                                        "valid_min": -0.05, "valid_max": 2.5, "unit": "MPa"}},
            "enabled": not removed, "removed": removed}
    record = DeviceRecord("B1-HP-01", 3 if removed else 1, T + timedelta(days=30 if removed else 0), info)
    return _stamp(codec.device_payload(record, "01JPX0M4QK1Y3G7X8D0W2T5N6A" if removed else "01JNB8Q3W0A5K7Y2M9C4V6B8D1"))


def _batch() -> dict[str, Any]:
    return {"contract_version": SCHEMA_VERSION, "gateway_id": GATEWAY, "estate_id": ESTATE, "kind": "telemetry",
            "sent_at": codec.iso(to_us(T + timedelta(hours=8, minutes=4, seconds=12.345))),
            "records": [_telemetry()]}


EXAMPLES: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "batch": ("batch", _batch),
    "telemetry": ("telemetry", _telemetry),
    "telemetry_meter": ("telemetry", _meter_telemetry),
    "event_lane_blocked": ("event", _event_lane),
    "event_clock_jump": ("event", _event_clock),
    "alarm_raised": ("alarm", _alarm_raised),
    "alarm_resolved": ("alarm", _alarm_resolved),
    "indicator": ("indicator", _indicator),
    "device": ("device", _device),
    "device_removed": ("device", lambda: _device(removed=True)),
}
"""name -> (record kind, builder). The builders render messages in zh-CN with the labels above."""


def examples() -> dict[str, tuple[str, dict[str, Any]]]:
    """Every example, built now in zh-CN (the configured language is restored afterwards)."""
    language = messages.current_language()
    messages.configure("zh-CN", LABELS)
    try:
        return {name: (kind, build()) for name, (kind, build) in EXAMPLES.items()}
    finally:
        messages.configure(language)


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, indent=2)


def messages_table() -> str:
    zh, en = messages.catalogue("zh-CN"), messages.catalogue("en")
    lines = ["| message_code | zh-CN | en |", "|---|---|---|"]
    for code in sorted(zh.messages):
        cells = (zh.messages[code].replace("|", "\\|"), en.messages[code].replace("|", "\\|"))
        lines.append(f"| `{code}` | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


_EXAMPLE = re.compile(r"(<!-- example: (\w+) (\w+) -->\s*```json\n)(.*?)(```)", re.S)
_REGION = re.compile(r"(<!-- generated: (\w+) -->\n)(.*?)(<!-- /generated -->)", re.S)


def render_page(text: str) -> str:
    """``text`` with every marked example and region regenerated; unknown names raise ``KeyError``."""
    built = examples()

    def example(match: re.Match[str]) -> str:
        kind, name = match.group(2), match.group(3)
        want_kind, payload = built[name]
        if want_kind != kind:
            raise KeyError(f"example {name!r} is a {want_kind}, the page says {kind}")
        return f"{match.group(1)}{_json(payload)}\n{match.group(5)}"

    tables = {"errors": markdown_table, "messages": messages_table}

    def region(match: re.Match[str]) -> str:
        return f"{match.group(1)}{tables[match.group(2)]()}\n{match.group(4)}"

    return _REGION.sub(region, _EXAMPLE.sub(example, text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.schemas.doc", description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, nargs="?", default=Path("docs/uplink.md"))
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is not up to date")
    args = parser.parse_args(argv)
    text = args.page.read_text(encoding="utf-8")
    fresh = render_page(text)
    if args.check:
        if fresh != text:
            print(f"{args.page} is stale: run python -m edge.schemas.doc {args.page}", file=sys.stderr)
            return 1
        return 0
    args.page.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
