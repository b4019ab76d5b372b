"""CJ/T 188 codec: the vectors byte for byte (both DI orders met in the field), meter data of water,
gas and heat meters, status bits, and corrupt frames refused with a typed error."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from drivers.cjt188 import codec
from drivers.cjt188.codec import DiOrder, StatusBits
from drivers.dlt645.codec import FrameError, Verdict
from edge.errors import DeviceProtocolError

VECTORS = yaml.safe_load((Path(__file__).parents[2] / "fixtures" / "cjt188" / "vectors.yaml").read_text(encoding="utf-8"))
CLOCK = datetime(2026, 11, 27, 13, 45, 30)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vectors_decode_and_encode_exactly(vector: dict) -> None:
    raw = bytes.fromhex(vector["frame"].replace(" ", ""))
    order = DiOrder(vector["di_order"])
    assert codec.read_data_request(vector["meter_type"], vector["address"], vector["ser"], order=order, preamble=b"") == raw
    frame = codec.decode_frame(codec.PREAMBLE + raw)
    assert (frame.meter_type, frame.address, frame.control) == (vector["meter_type"], vector["address"], codec.READ_DATA)
    assert frame.data == codec.di_bytes(codec.DI_READ_DATA, order) + bytes([vector["ser"]])


def test_read_address_request_goes_to_the_wildcard() -> None:
    frame = codec.decode_frame(codec.read_address_request(7))
    assert (frame.meter_type, frame.address, frame.control) == (0xAA, codec.WILDCARD_ADDRESS, 0x03)
    reply = codec.decode_frame(codec.read_address_reply(0x10, "12345678901234", 7))
    assert codec.check_address_reply(reply, 7) == (0x10, "12345678901234")


@pytest.mark.parametrize("meter_type", [0x10, 0x11, 0x30])
def test_water_and_gas_meter_data(meter_type: int) -> None:
    bits = StatusBits()
    payload = codec.encode_meter_data(meter_type, {"volume": 1234.56, "volume_settlement": 1200.0},
                                      bits.encode(1, True), CLOCK)
    reply = codec.decode_frame(codec.read_data_reply(meter_type, "00000000000012", 3, payload))
    data = codec.decode_meter_data(meter_type, codec.check_read_reply(reply, meter_type, "00000000000012", 3))
    assert data.values["volume"] == (pytest.approx(1234.56), "m³")
    assert data.values["volume_settlement"] == (pytest.approx(1200.0), "m³")
    assert data.clock == CLOCK
    assert bits.valve(data.status) == 1 and bits.low_battery(data.status)


@pytest.mark.parametrize("meter_type", [0x20, 0x21])
def test_heat_meter_data(meter_type: int) -> None:
    values = {"heat_settlement": 100.0, "heat_energy": 1234.56, "heat_power": 5400.5, "flow_rate": 0.8125,
              "volume": 321.09, "supply_temperature": 55.25, "return_temperature": 41.5, "working_time": 8760}
    payload = codec.encode_meter_data(meter_type, values, 0, CLOCK)
    assert len(payload) == 43
    data = codec.decode_meter_data(meter_type, payload)
    for name, value in values.items():
        assert data.values[name][0] == pytest.approx(value), name
    assert data.values["heat_energy"][1] == "kWh" and data.values["heat_power"][1] == "W"


def test_heat_in_gj_is_reported_in_kwh() -> None:
    payload = bytearray(codec.encode_meter_data(0x20, {"heat_energy": 12.5}, 0, CLOCK))
    payload[9] = 0x11  # current heat unit byte: GJ
    assert codec.decode_meter_data(0x20, bytes(payload)).values["heat_energy"] == (pytest.approx(12.5 * 1e3 / 3.6), "kWh")
    payload[9] = 0x77
    with pytest.raises(FrameError, match="unknown unit byte 0x77"):
        codec.decode_meter_data(0x20, bytes(payload))


def test_status_bits() -> None:
    bits = StatusBits()
    assert [bits.valve(s) for s in (0x00, 0x40, 0xC0)] == [0, 1, 2]
    assert bits.low_battery(0x20) and not bits.low_battery(0x40)
    low = StatusBits(valve_mask=0x03, valve_closed=0x01, valve_abnormal=0x03, battery_low=0x04)
    assert low.valve(0x01) == 1 and low.low_battery(0x04)


def test_replies_must_account_for_the_request() -> None:
    reply = codec.decode_frame(codec.read_data_reply(0x10, "00000000000012", 3,
                                                     codec.encode_meter_data(0x10, {}, 0, CLOCK)))
    for meter_type, address, ser, order, text in [
        (0x10, "00000000000013", 3, DiOrder.STANDARD, "meter"),
        (0x30, "00000000000012", 3, DiOrder.STANDARD, "type"),
        (0x10, "00000000000012", 4, DiOrder.STANDARD, "SER"),
        (0x10, "00000000000012", 3, DiOrder.HIGH_FIRST, "DI"),
    ]:
        with pytest.raises(FrameError, match=text):
            codec.check_read_reply(reply, meter_type, address, ser, order=order)
    abnormal = codec.decode_frame(codec.abnormal_reply(0x10, "00000000000012", 3, 0x0040))
    with pytest.raises(codec.AbnormalReply) as info:
        codec.check_read_reply(abnormal, 0x10, "00000000000012", 3)
    assert info.value.status == 0x40


GOOD = codec.read_data_reply(0x10, "00000000000012", 0, codec.encode_meter_data(0x10, {"volume": 1.0}, 0, CLOCK))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (GOOD[:-2] + bytes([(GOOD[-2] + 1) & 0xFF]) + b"\x16", "checksum"),
        (GOOD[:-1] + b"\x17", "end"),
        (GOOD[:-4], "truncated"),
        (GOOD + b"\x16", "length"),
        (b"\x00\x11" + GOOD, "garbage"),
    ],
)
def test_corrupt_frames_are_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(DeviceProtocolError) as info:
        codec.decode_frame(raw)
    assert isinstance(info.value, FrameError) and info.value.reason == reason


def test_scan_skips_garbage_between_frames() -> None:
    stream = codec.PREAMBLE + b"\x68\x99\x00" + GOOD + b"\x01\x02" + GOOD
    first = codec.scan_frame(stream)
    assert first.verdict is Verdict.OK and first.garbage == 3
    second = codec.scan_frame(stream[first.skipped + first.length :])
    assert second.verdict is Verdict.OK and second.garbage == 2 and second.frame == first.frame


addresses = st.integers(0, 10**14 - 1).map(lambda n: f"{n:014d}")


@given(st.sampled_from(sorted(codec.WATER_TYPES | codec.GAS_TYPES | codec.HEAT_TYPES)), addresses,
       st.integers(0, 0xFF), st.binary(max_size=100))
def test_frames_round_trip(meter_type: int, address: str, control: int, data: bytes) -> None:
    frame = codec.decode_frame(codec.encode_frame(meter_type, address, control, data))
    assert (frame.meter_type, frame.address, frame.control, frame.data) == (meter_type, address, control, data)


@given(st.integers(0, 99_999_999), st.integers(0, 99_999_999), st.integers(0, 0xFFFF),
       st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_meter_data_round_trips(volume: int, settlement: int, status: int, when: datetime) -> None:
    when = when.replace(microsecond=0)
    payload = codec.encode_meter_data(0x10, {"volume": volume / 100, "volume_settlement": settlement / 100}, status, when)
    data = codec.decode_meter_data(0x10, payload)
    assert round(data.values["volume"][0] * 100) == volume
    assert round(data.values["volume_settlement"][0] * 100) == settlement
    assert data.status == status and data.clock == when
