"""GB/T 26875.3 codec: the handshake vector byte for byte, every object type round-trips
(little-endian fields, GB18030 text, signed analog values), and corrupt frames are refused."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from drivers.dlt645.codec import FrameError, Verdict
from drivers.gb26875 import codec
from edge.errors import DeviceProtocolError

VECTORS = yaml.safe_load((Path(__file__).parents[2] / "fixtures" / "gb26875" / "vectors.yaml").read_text(encoding="utf-8"))
WHEN = datetime(2026, 11, 27, 14, 3, 5)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vectors_decode_and_encode_exactly(vector: dict) -> None:
    raw = bytes.fromhex(vector["frame"].replace(" ", ""))
    frame = codec.decode_frame(raw)
    assert frame.serial == vector["serial"] and frame.command == vector["command"]
    assert frame.time == datetime.fromisoformat(vector["time"])
    assert (frame.source, frame.destination) == (vector["source"], vector["destination"])
    assert frame.data == bytes.fromhex(vector["data"])
    again = codec.encode_frame(frame.serial, frame.command, frame.source, frame.destination, frame.data,
                               when=frame.time, version=frame.version)
    assert again == raw


def test_confirm_and_deny_echo_the_serial_and_swap_addresses() -> None:
    frame = codec.decode_frame(codec.encode_frame(4242, codec.SEND_DATA, 0x1122, 0x3344, b"\x15\x00", when=WHEN))
    ok = codec.decode_frame(codec.confirm(frame, when=WHEN))
    assert (ok.serial, ok.command, ok.source, ok.destination, ok.data) == (4242, codec.CONFIRM, 0x3344, 0x1122, b"")
    no = codec.decode_frame(codec.deny(frame, when=WHEN))
    assert (no.serial, no.command) == (4242, codec.DENY)


def test_time_sync_is_a_control_frame_with_flag_90() -> None:
    frame = codec.decode_frame(codec.time_sync(7, 1, 2, WHEN))
    assert frame.command == codec.CONTROL
    flag, objects = codec.decode_objects(frame.data)
    assert flag == codec.SYNC_TIME and objects == [codec.UitdTime(WHEN)]


def test_component_state_with_gb18030_description() -> None:
    obj = codec.ComponentState(1, 1, 21, 2017, 0b11, "3栋12层 感烟探测器", WHEN)
    data = codec.encode_objects([obj])
    assert len(data) == 2 + 40 + 6
    assert data[5:9] == (2017).to_bytes(4, "little")
    flag, objects = codec.decode_objects(data)
    assert flag == codec.COMPONENT_STATE and objects == [obj]
    assert objects[0].states == ["fire"] and objects[0].address_text == "1-02-017"


def test_analog_values_are_signed_and_scaled_per_type() -> None:
    pressure = codec.ComponentAnalog(11, 1, 33, 5, 5, 350, WHEN)  # 35.0 kPa
    temperature = codec.ComponentAnalog(1, 1, 40, 6, 3, -125, WHEN)  # -12.5 °C
    flag, objects = codec.decode_objects(codec.encode_objects([pressure]))
    assert flag == 3 and objects[0].value == pytest.approx(35.0) and objects[0].unit == "kPa"
    _, objects = codec.decode_objects(codec.encode_objects([temperature]))
    assert objects[0].value == pytest.approx(-12.5) and objects[0].unit == "°C"


def test_every_object_type_round_trips() -> None:
    samples = [
        [codec.SystemState(1, 1, 0b101, WHEN)],
        [codec.ComponentState(1, 1, 21, 1, 1 << 2, "故障", WHEN), codec.ComponentState(1, 1, 21, 2, 1, "", None)],
        [codec.ComponentAnalog(1, 2, 3, 4, 4, -1, WHEN)],
        [codec.OperationRecord(1, 1, 0b10, 7, WHEN)],
        [codec.SystemTime(1, 1, WHEN)],
        [codec.UitdState(0b1, WHEN)],
        [codec.UitdOperation(4, 2, WHEN)],
        [codec.UitdTime(WHEN)],
    ]
    for objects in samples:
        assert codec.decode_objects(codec.encode_objects(objects))[1] == objects


def test_unknown_type_flags_are_kept_raw() -> None:
    assert codec.decode_objects(b"\x05\x01abc") == (5, [codec.RawObject(5, b"\x01abc")])
    assert codec.encode_objects([codec.RawObject(5, b"\x01abc")]) == b"\x05\x01abc"


def test_object_count_must_match_the_data_length() -> None:
    data = codec.encode_objects([codec.UitdState(1, WHEN)])
    with pytest.raises(FrameError, match="objects") as info:
        codec.decode_objects(data[:1] + b"\x02" + data[2:])
    assert info.value.reason == "length"


def test_text_that_does_not_fit_is_refused() -> None:
    with pytest.raises(ValueError, match="31"):
        codec.encode_text("消" * 16)  # 32 bytes in GB18030
    assert codec.decode_text("消防".encode("gb18030") + b"\x00\x00garbage") == "消防"
    assert "\ufffd" in codec.decode_text(b"\xff\x00")  # undecodable, but the record is kept


GOOD = codec.encode_frame(1, codec.SEND_DATA, 1, 2, codec.encode_objects([codec.UitdState(1, WHEN)]), when=WHEN)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (GOOD[:-3] + bytes([(GOOD[-3] + 1) & 0xFF]) + b"##", "checksum"),
        (GOOD[:-1] + b"$", "end"),
        (GOOD[:-5], "truncated"),
        (GOOD + b"#", "length"),
        (b"xy" + GOOD, "garbage"),
        (GOOD[:24] + (2000).to_bytes(2, "little") + GOOD[26:], "length"),
    ],
)
def test_corrupt_frames_are_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(DeviceProtocolError) as info:
        codec.decode_frame(raw)
    assert isinstance(info.value, FrameError) and info.value.reason == reason


def test_scan_counts_garbage_between_frames() -> None:
    stream = b"GET / HTTP/1.0\r\n" + GOOD + b"\x00\x01" + GOOD
    first = codec.scan_frame(stream)
    assert first.verdict is Verdict.OK and first.garbage == 16
    second = codec.scan_frame(stream[first.skipped + first.length :])
    assert second.verdict is Verdict.OK and second.garbage == 2
    assert codec.scan_frame(GOOD[:20]).verdict is Verdict.NEED_MORE
    assert codec.scan_frame(b"abc@").skipped == 3  # half a start marker is kept


texts = st.text(alphabet=st.sampled_from("消防栓感烟探测器手报按钮压力开关水流指示器12345栋层ABCabc-"), max_size=15)


@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 0xFFFFFFFF),
       st.integers(0, 0xFFFF), texts)
def test_component_states_round_trip(sys_type: int, sys_addr: int, part_type: int, part_addr: int, status: int,
                                     text: str) -> None:
    obj = codec.ComponentState(sys_type, sys_addr, part_type, part_addr, status, text, WHEN)
    assert codec.decode_objects(codec.encode_objects([obj]))[1] == [obj]


@given(st.integers(0, 0xFFFF), st.integers(1, 6), st.integers(0, 2**48 - 1), st.integers(0, 2**48 - 1),
       st.binary(max_size=1024), st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_frames_round_trip(serial: int, command: int, source: int, destination: int, data: bytes, when: datetime) -> None:
    when = when.replace(microsecond=0)
    frame = codec.decode_frame(codec.encode_frame(serial, command, source, destination, data, when=when))
    assert (frame.serial, frame.command, frame.source, frame.destination, frame.data, frame.time) == (
        serial, command, source, destination, data, when)


@given(st.integers(-32768, 32767), st.sampled_from(sorted(codec.ANALOG_TYPES)))
def test_analog_round_trip(raw: int, analog_type: int) -> None:
    obj = codec.ComponentAnalog(1, 1, 1, 1, analog_type, raw, WHEN)
    assert codec.decode_objects(codec.encode_objects([obj]))[1] == [obj]
