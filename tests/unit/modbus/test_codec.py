"""Register decoding, CRC, frame checks and wire timing, against the vectors in shared/docs/devices.md."""

from __future__ import annotations

import math
import struct

import pytest
from pymodbus.framer.rtu import FramerRTU

from drivers.modbus.codec import (
    DataType,
    Verdict,
    check_rtu_response,
    check_tcp_response,
    crc16,
    decode_value,
    encode_value,
    inter_frame_silence_s,
    make_block_decoder,
    make_decoder,
    mbap,
    rtu_exception,
    rtu_read_request,
    rtu_read_response,
    rtu_transaction_wire_s,
)


def test_ddsu666_voltage_vector() -> None:
    # devices.md 1: "01 04 04 43 66 33 34 ..." = 230.2 V (float32 ABCD)
    frame = bytes.fromhex("0104044366333 4".replace(" ", ""))
    assert decode_value(frame[3:7], DataType.FLOAT32) == pytest.approx(230.2, abs=1e-4)


def test_dtsu666_frequency_vector() -> None:
    # devices.md 2: raw 4999.0 = 0x459C3800 -> x0.01 = 49.99 Hz
    assert decode_value(bytes.fromhex("459C3800"), DataType.FLOAT32) == 4999.0


def test_water_meter_byte_reversed_float() -> None:
    # devices.md 5 a): the wire bytes 1E 85 0B 3F mean 0.545 (DCBA)
    value = decode_value(bytes.fromhex("1E850B3F"), DataType.FLOAT32, "little", "little")
    assert value == pytest.approx(0.545, abs=1e-6)
    # Read as ABCD the same bytes are garbage: the order matters.
    assert decode_value(bytes.fromhex("1E850B3F"), DataType.FLOAT32) != pytest.approx(0.545, abs=0.1)


def test_transmitter_request_and_reply_vectors() -> None:
    # devices.md 6: request 01 03 00 04 00 01 (read 0x0004, 1 register), reply 01 03 02 00 12 (raw 18).
    # The CRC bytes printed there (C4 0B, 79 84) belong to other frames (01 03 00 00 00 02 and
    # 01 03 02 00 01); the Modbus CRC of these frames is C5 CB and 38 49, as pymodbus computes too.
    assert rtu_read_request(1, 3, 4, 1) == bytes.fromhex("010300040001C5CB")
    assert rtu_read_request(1, 3, 0, 2)[-2:] == bytes.fromhex("C40B")
    assert FramerRTU.compute_CRC(bytes.fromhex("010300040001")) == 0xC5CB
    reply = rtu_read_response(1, 3, b"\x00\x12")
    assert reply == bytes.fromhex("0103020012" "3849")
    assert decode_value(reply[3:5], DataType.INT16) == 18
    assert check_rtu_response(reply, 1, 3, 1).verdict is Verdict.OK
    # The frame exactly as printed in devices.md fails the CRC check and is reported as corrupt.
    assert check_rtu_response(bytes.fromhex("01030200127984"), 1, 3, 1).verdict is Verdict.CORRUPT


@pytest.mark.parametrize(
    ("byte_order", "word_order", "wire"),
    [("big", "big", "41424344"), ("big", "little", "43444142"), ("little", "big", "42414443"),
     ("little", "little", "44434241")],
)
def test_four_orders_of_a_32_bit_value(byte_order: str, word_order: str, wire: str) -> None:
    value = struct.unpack(">f", bytes.fromhex("41424344"))[0]
    assert encode_value(value, DataType.FLOAT32, byte_order, word_order) == bytes.fromhex(wire)
    assert decode_value(bytes.fromhex(wire), DataType.FLOAT32, byte_order, word_order) == value


@pytest.mark.parametrize(
    ("dtype", "value"),
    [(DataType.INT16, -2), (DataType.UINT16, 65535), (DataType.INT32, -123456), (DataType.UINT32, 4_000_000_000),
     (DataType.FLOAT32, 1.5), (DataType.FLOAT64, 12345.678901), (DataType.INT64, -(2**40)), (DataType.UINT64, 2**50)],
)
@pytest.mark.parametrize("orders", [("big", "big"), ("big", "little"), ("little", "big"), ("little", "little")])
def test_round_trip_every_type_and_order(dtype: DataType, value: float, orders: tuple[str, str]) -> None:
    wire = encode_value(value, dtype, *orders)
    assert len(wire) == dtype.registers * 2
    buf = b"\xff\xff" + wire  # decoders read at an offset inside a block
    assert make_decoder(dtype, *orders)(buf, 2) == pytest.approx(value)


def _block(points: list[tuple[str, int, DataType, str, str, float]]) -> tuple[bytes, dict[str, float]]:
    """Wire bytes of a block holding ``points`` (name, byte offset, type, orders, value); gaps are 0xEE."""
    size = max(offset + dtype.registers * 2 for _, offset, dtype, *_ in points) + 4
    buf = bytearray(b"\xee" * size)
    for _, offset, dtype, byte_order, word_order, value in points:
        wire = encode_value(value, dtype, byte_order, word_order)
        buf[offset : offset + len(wire)] = wire
    return bytes(buf), {name: value for name, *_, value in points}


def _decode_block(points: list[tuple[str, int, DataType, str, str, float]], data: bytes) -> dict[str, float]:
    decode = make_block_decoder([p[:5] for p in points])
    return dict(decode(data))


@pytest.mark.parametrize(
    "points",
    [
        # one struct unpack: same byte order, plain orders, a gap, ints and floats, listed out of order
        [("f", 8, DataType.FLOAT32, "big", "big", 229.5), ("i", 0, DataType.INT16, "big", "big", -7),
         ("u", 2, DataType.UINT32, "big", "big", 4_000_000_000), ("d", 16, DataType.FLOAT64, "big", "big", 0.125)],
        [("a", 0, DataType.FLOAT32, "little", "little", 1.5), ("b", 6, DataType.UINT16, "little", "big", 513)],
        # per point: a word-swapped value, mixed byte orders, overlapping points (an alias)
        [("a", 0, DataType.FLOAT32, "big", "little", 50.0), ("b", 4, DataType.INT16, "big", "big", -1)],
        [("a", 0, DataType.FLOAT32, "big", "big", 2.5), ("b", 4, DataType.FLOAT32, "little", "little", 3.5)],
        [("lo", 2, DataType.UINT16, "big", "big", 7), ("all", 0, DataType.UINT32, "big", "big", 7)],
    ],
)
def test_block_decoder_matches_each_point_alone(points: list[tuple[str, int, DataType, str, str, float]]) -> None:
    data, expected = _block(points)
    got = _decode_block(points, data)
    assert got == pytest.approx(expected)
    assert all(type(v) is float for v in got.values())  # ints too: downstream arithmetic is in floats


def test_uint32_word_swapped_counter() -> None:
    # 0x0001E240 = 123456, CDAB order puts the low word first.
    assert decode_value(bytes.fromhex("E2400001"), DataType.UINT32, "big", "little") == 123456


def test_encode_clamps_integers_and_nan_is_zero() -> None:
    assert decode_value(encode_value(70000, DataType.INT16), DataType.INT16) == 32767
    assert decode_value(encode_value(math.nan, DataType.UINT16), DataType.UINT16) == 0


def test_crc_is_sent_low_byte_first() -> None:
    frame = rtu_read_request(1, 3, 0, 1)
    assert crc16(frame[:-2]) == 0x0A84
    assert frame[-2:] == b"\x84\x0a"  # the well-known 01 03 00 00 00 01 84 0A


class TestRtuCheck:
    def test_incomplete_until_the_expected_length(self) -> None:
        reply = rtu_read_response(7, 4, bytes(8))
        for cut in range(len(reply)):
            assert check_rtu_response(reply[:cut], 7, 4, 4).verdict is Verdict.INCOMPLETE
        assert check_rtu_response(reply, 7, 4, 4).verdict is Verdict.OK

    def test_bad_crc_is_corrupt(self) -> None:
        reply = bytearray(rtu_read_response(7, 4, bytes(8)))
        reply[4] ^= 0x10
        check = check_rtu_response(bytes(reply), 7, 4, 4)
        assert check.verdict is Verdict.CORRUPT and "CRC" in check.reason

    def test_exception_frame(self) -> None:
        assert check_rtu_response(rtu_exception(7, 4, 2), 7, 4, 4).verdict is Verdict.OK
        bad = bytearray(rtu_exception(7, 4, 2))
        bad[2] = 3
        assert check_rtu_response(bytes(bad), 7, 4, 4).verdict is Verdict.CORRUPT

    def test_wrong_byte_count_is_corrupt(self) -> None:
        reply = rtu_read_response(7, 3, bytes(6))  # 3 registers where 4 were asked
        assert check_rtu_response(reply + b"\x00\x00", 7, 3, 4).verdict is Verdict.CORRUPT

    def test_late_answer_of_another_unit_is_stale(self) -> None:
        late = rtu_read_response(9, 3, bytes(2))
        check = check_rtu_response(late, 7, 3, 4)
        assert check.verdict is Verdict.STALE and check.length == len(late)


class TestTcpCheck:
    def test_ok_and_incomplete(self) -> None:
        frame = mbap(5, 1, bytes([3, 4]) + bytes(4))
        assert check_tcp_response(frame[:-1], 5, 1, 3, 2).verdict is Verdict.INCOMPLETE
        assert check_tcp_response(frame, 5, 1, 3, 2).verdict is Verdict.OK

    def test_old_transaction_is_stale(self) -> None:
        frame = mbap(4, 1, bytes([3, 4]) + bytes(4))
        assert check_tcp_response(frame, 5, 1, 3, 2).verdict is Verdict.STALE

    def test_byte_count_mismatch_and_bad_protocol_id(self) -> None:
        assert check_tcp_response(mbap(5, 1, bytes([3, 6]) + bytes(4)), 5, 1, 3, 2).verdict is Verdict.CORRUPT
        bad_pid = bytes.fromhex("0005 0001 0007 01 03 04 00000000".replace(" ", ""))
        assert check_tcp_response(bad_pid, 5, 1, 3, 2).verdict is Verdict.CORRUPT

    def test_exception(self) -> None:
        assert check_tcp_response(mbap(5, 1, bytes([0x83, 2])), 5, 1, 3, 2).verdict is Verdict.OK


def test_wire_time_at_9600_baud() -> None:
    char = 10 / 9600
    assert inter_frame_silence_s(9600) == pytest.approx(3.5 * char)
    assert inter_frame_silence_s(115200) == 0.00175
    # FC3 read of 2 registers: 8 + 9 characters and two silences.
    assert rtu_transaction_wire_s(2, 9600) == pytest.approx(17 * char + 7 * char)
    # 8E1 has 11 bits per character.
    assert rtu_transaction_wire_s(2, 9600, parity="E") == pytest.approx(24 * 11 / 9600)
