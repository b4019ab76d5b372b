"""MQTT payload templates: selectors, encodings, units, quality, timestamps, and the errors that park a message."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drivers.mqtt.payload import MessageDecoder, PayloadError
from drivers.mqtt.profile import MessageSpec, MqttProfileLibrary
from drivers.mqtt.selector import MISSING, SelectorError, compile_selector
from drivers.mqtt.topics import TopicRouter, matches
from edge.errors import ConfigError
from edge.records import Quality
from simulators.mqtt.devices import MALFORMED, SimDevice, lift_report, smoke_raw, smoke_up

NOW = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)
LIB = MqttProfileLibrary()


def decoder(profile: str, topic: str) -> MessageDecoder:
    return MessageDecoder(next(m for m in LIB.get(profile).messages if m.topic == topic))


def test_selectors() -> None:
    doc = {"a": {"b": [10, 20, {"c": "x"}]}, "k.dot": 5, "list": [{"name": "t", "v": 1}, {"name": "h", "v": 2}]}
    assert compile_selector("$").select(doc) is doc
    assert compile_selector("$.a.b[1]").select(doc) == 20
    assert compile_selector("$.a.b[-1].c").select(doc) == "x"
    assert compile_selector("$['k.dot']").select(doc) == 5
    assert compile_selector("$.list[?(@.name == 'h')].v").select(doc) == 2
    assert compile_selector("$.a.b[7]").select(doc) is MISSING
    assert compile_selector("$.nope.deeper").select(doc) is MISSING
    with pytest.raises(SelectorError, match=r"expected an array"):
        compile_selector("$.a[0]").select(doc)
    with pytest.raises(SelectorError, match="position 3"):
        compile_selector("$.a..b")
    with pytest.raises(SelectorError, match="must start"):
        compile_selector("a.b")


def test_topic_matching() -> None:
    assert matches("a/+/c", "a/b/c") and not matches("a/+/c", "a/b/d")
    assert matches("a/#", "a/b/c") and matches("a/#", "a")
    assert not matches("+/x", "$SYS/x")
    router: TopicRouter[str] = TopicRouter()
    router.add("estate/s1/up", "exact")
    router.add("estate/+/up", "wild")
    assert list(router.route("estate/s1/up")) == ["exact", "wild"]
    assert list(router.route("estate/s2/up")) == ["wild"]
    assert router.filters == ["estate/+/up", "estate/s1/up"]


def test_smoke_json_with_payload_timestamp() -> None:
    dev = SimDevice("s1", "smoke", "nb/s1", alarm=True, battery=87, rsrp=-101)
    measured = datetime(2025, 3, 1, 0, 59, 30, 250000, tzinfo=UTC)
    _, payload = smoke_up(dev, measured)
    readings = {r.point: r for r in decoder("nbiot_smoke_detector", "up").decode("s1", payload, NOW)}
    assert readings["alarm"].value == 1.0
    assert readings["battery"].value == 87 and readings["battery"].unit == "%"
    assert readings["signal_rsrp_dbm"].value == -101
    assert readings["fault"].value == 0
    assert {r.ts for r in readings.values()} == {measured}


def test_smoke_hex_inside_json_bits_and_signed_fields() -> None:
    dev = SimDevice("s1", "smoke", "nb/s1", alarm=True, battery=42, rsrp=-117)
    _, payload = smoke_raw(dev, NOW)
    readings = {r.point: r.value for r in decoder("nbiot_smoke_detector", "raw").decode("s1", payload, NOW)}
    assert readings == {"alarm": 1.0, "fault": 0.0, "battery": 42.0, "signal_rsrp_dbm": -117.0}
    with pytest.raises(PayloadError, match=r"needs bytes 2\.\.3 of a 2-byte payload") as err:
        decoder("nbiot_smoke_detector", "raw").decode("s1", b'{"data": "0155"}', NOW)
    assert err.value.kind == "hex"


def test_plain_numbers_and_words() -> None:
    leak = decoder("water_leak_probe", "leak")
    assert leak.decode("l1", b"wet", NOW)[0].value == 1.0
    assert leak.decode("l1", b" 0 ", NOW)[0].value == 0.0
    with pytest.raises(PayloadError, match="'soggy' is not a number") as err:
        leak.decode("l1", b"soggy", NOW)
    assert err.value.kind == "type"


def test_lift_units_quality_and_local_time_from_payload() -> None:
    dev = SimDevice("lift1", "lift", "lift/1", running=True, floor=12, load_pct=40.0, motor_current_ma=12500)
    _, payload = lift_report(dev, NOW)
    readings = {r.point: r for r in decoder("lift_box_json", "report").decode("lift1", payload, datetime(2030, 1, 1, tzinfo=UTC))}
    assert readings["motor_current"].value == pytest.approx(12.5) and readings["motor_current"].unit == "A"  # mA -> A
    assert readings["floor"].value == 12 and readings["running"].value == 1 and readings["door_open"].value == 0
    assert readings["cabin_temperature"].unit == "°C"
    assert readings["load"].quality == Quality.GOOD
    assert {r.ts for r in readings.values()} == {NOW}  # "09:00:00" in Shanghai, not the arrival time
    bad_quality = payload.replace(b'"quality":"good"', b'"quality":"bad"')
    assert {r.quality for r in decoder("lift_box_json", "report").decode("lift1", bad_quality, NOW)} == {Quality.BAD}


def test_out_of_range_value_is_bad_quality_not_parked() -> None:
    dev = SimDevice("s1", "smoke", "nb/s1", battery=180)
    readings = {r.point: r for r in decoder("nbiot_smoke_detector", "up").decode("s1", smoke_up(dev, NOW)[1], NOW)}
    assert readings["battery"].quality == Quality.BAD and readings["alarm"].quality == Quality.GOOD


@pytest.mark.parametrize("kind", ["json", "type", "utf8"])
def test_malformed_payloads_raise_with_their_kind(kind: str) -> None:
    with pytest.raises(PayloadError) as err:
        decoder("nbiot_smoke_detector", "up").decode("s1", MALFORMED[kind], NOW)
    assert err.value.kind == kind


def test_wrong_shapes_and_units_name_the_point() -> None:
    up = decoder("nbiot_smoke_detector", "up")
    with pytest.raises(PayloadError, match=r"point battery: \$\.battery is \[1\], not a number"):
        up.decode("s1", b'{"alarm": "normal", "battery": [1], "signal": {"rsrp": -90}}', NOW)
    with pytest.raises(PayloadError, match=r"point alarm: nothing at \$\.alarm") as err:
        up.decode("s1", b'{"battery": 50, "signal": {"rsrp": -90}}', NOW)
    assert err.value.kind == "missing"
    with pytest.raises(PayloadError, match=r"expected an object") as err:
        up.decode("s1", b'[1, 2]', NOW)
    assert err.value.kind == "type"
    lift = decoder("lift_box_json", "report")
    _, payload = lift_report(SimDevice("l", "lift", "lift/1"), NOW)
    with pytest.raises(PayloadError, match="motor_current: cannot convert 'kPa'") as err:
        lift.decode("l", payload.replace(b'"unit":"mA"', b'"unit":"kPa"'), NOW)
    assert err.value.kind == "unit"
    with pytest.raises(PayloadError, match="unknown quality") as err:
        lift.decode("l", payload.replace(b'"quality":"good"', b'"quality":"maybe"'), NOW)
    assert err.value.kind == "quality"
    with pytest.raises(PayloadError, match="not an ISO 8601 time") as err:
        lift.decode("l", payload.replace(b'"time":"', b'"time":"yesterday '), NOW)
    assert err.value.kind == "timestamp"


def test_epoch_units_auto_detected() -> None:
    spec = MessageSpec.model_validate({"timestamp": {"select": "$.t"}, "points": {"v": {"select": "$.v"}}})
    dec = MessageDecoder(spec)
    seconds = dec.decode("d", b'{"t": 1740790800, "v": 1}', NOW)[0].ts
    millis = dec.decode("d", b'{"t": 1740790800000, "v": 1}', NOW)[0].ts
    assert seconds == millis == datetime(2025, 3, 1, 1, 0, tzinfo=UTC)


def test_profiles_validate_and_bad_profiles_name_the_line(tmp_path: Path) -> None:
    assert {"nbiot_smoke_detector", "water_leak_probe", "lift_box_json"} <= set(LIB.names())
    for name in LIB.names():
        assert LIB.get(name).messages
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: x\nvendor: y\nsource: z\ncategory: other\nmessages:\n"
                   "  - topic: up/#/x\n    points:\n      v: {select: '$..v', unit: furlong}\n")
    with pytest.raises(ConfigError) as err:
        MqttProfileLibrary([tmp_path]).get("bad")
    text = "\n".join(err.value.problems)
    assert "bad.yaml:6" in text and "'#' must be the whole last level" in text
    assert "unknown unit 'furlong'" in text and "cannot parse" in text


def test_hex_struct_layout_little_endian() -> None:
    spec = MessageSpec.model_validate({"encoding": "hex", "points": {
        "t": {"hex": {"offset": 1, "type": "int16", "byte_order": "little"}, "scale": 0.1, "unit": "°C"}}})
    payload = ("AA" + struct.pack("<h", -125).hex()).encode()
    assert MessageDecoder(spec).decode("d", payload, NOW)[0].value == pytest.approx(-12.5)
