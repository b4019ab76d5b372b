"""Coils and discrete inputs (FC1/FC2): known frames of a common 8-channel DI board, LSB-first packing,
frame checks sized by packed bytes, bit planning apart from registers, and profile validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.codec import (
    DataType,
    Verdict,
    check_rtu_response,
    check_tcp_response,
    data_length,
    decode_value,
    make_bit_block_decoder,
    make_decoder,
    mbap,
    pack_bits,
    rtu_read_request,
    rtu_read_response,
    rtu_response_length,
    unpack_bits,
    with_crc,
)
from drivers.modbus.planner import PlannedPoint, plan_reads
from drivers.modbus.profile import ProfileLibrary, load_profile
from edge.errors import ConfigError
from edge.rules.states import CONTEXT_NAMES

# An LC-Technology style relay/DI board reading its 8 optocoupler inputs (unit 0xFF), as quoted in
# artisan-roaster-scope/artisan discussion 634: input 1 high, the others low.
LC_REQUEST = bytes.fromhex("FF 02 00 00 00 08 6C 12")
LC_REPLY = bytes.fromhex("FF 02 01 01 51 A0")


def test_known_di_board_frames_decode_input_1_high() -> None:
    assert rtu_read_request(0xFF, 2, 0x0000, 8) == LC_REQUEST
    check = check_rtu_response(LC_REPLY, 0xFF, 2, 8)
    assert check.verdict is Verdict.OK and check.length == 6 == rtu_response_length(8, 2)
    assert unpack_bits(LC_REPLY[3:4], 8) == [1, 0, 0, 0, 0, 0, 0, 0]
    decode = make_bit_block_decoder([(f"di{i + 1}", i) for i in range(8)])
    assert dict(decode(LC_REPLY[3:4])) == {"di1": 1.0, **{f"di{i}": 0.0 for i in range(2, 9)}}


def test_bits_are_lsb_first_across_bytes() -> None:
    # Inputs 0, 2 and 9 set out of 10: 0b00000101, then bit 1 of the second byte.
    data = pack_bits([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    assert data == bytes([0x05, 0x02]) and data_length(2, 10) == 2 and data_length(3, 10) == 20
    decode = make_decoder(DataType.BIT)
    assert [decode(data, i) for i in (0, 1, 2, 9)] == [1.0, 0.0, 1.0, 1.0]
    assert decode_value(b"\x01", DataType.BIT) == 1.0
    with pytest.raises(ValueError, match="fewer than 17 bits"):
        unpack_bits(data, 17)


@given(st.lists(st.booleans(), min_size=1, max_size=2000))
def test_pack_and_unpack_round_trip(bits: list[bool]) -> None:
    data = pack_bits(bits)
    assert len(data) == data_length(1, len(bits))
    assert unpack_bits(data, len(bits)) == [int(b) for b in bits]


def test_bit_frames_of_the_wrong_size_are_corrupt() -> None:
    ok = rtu_read_response(1, 2, pack_bits([1] * 10))
    assert check_rtu_response(ok, 1, 2, 10).verdict is Verdict.OK
    # A register-sized answer (byte count 20) to a 10-bit read is damage, not data.
    wrong = with_crc(bytes([1, 2, 20]) + bytes(20))
    check = check_rtu_response(wrong, 1, 2, 10)
    assert check.verdict is Verdict.CORRUPT and "expected 2" in check.reason
    assert check_rtu_response(ok[:4], 1, 2, 10).verdict is Verdict.INCOMPLETE
    tcp = mbap(7, 1, bytes([2, 1, 0x81]))
    assert check_tcp_response(tcp, 7, 1, 2, 8).verdict is Verdict.OK
    assert check_tcp_response(mbap(7, 1, bytes([2, 2, 0x81, 0])), 7, 1, 2, 8).verdict is Verdict.CORRUPT


def test_bits_merge_up_to_2000_and_never_with_registers() -> None:
    points = [PlannedPoint(f"b{a}", 2, a, 1) for a in (0, 1, 7, 1999, 2000)]
    points += [PlannedPoint("coil", 1, 0, 1), PlannedPoint("reg", 3, 0, 2)]
    blocks = plan_reads(points, max_registers=125, max_gap=200)
    assert [(b.function_code, b.address, b.count) for b in blocks] == [(1, 0, 1), (2, 0, 2000), (2, 2000, 1), (3, 0, 2)]
    assert dict(blocks[1].points) == {"b0": 0, "b1": 1, "b7": 7, "b1999": 1999}
    # Gaps: bridged up to 16 bits per register of max_gap (the same wire cost), else a new block.
    spaced = [PlannedPoint("a", 2, 0, 1), PlannedPoint("b", 2, 17, 1), PlannedPoint("c", 2, 40, 1)]
    assert [(b.address, b.count) for b in plan_reads(spaced, max_gap=1)] == [(0, 18), (40, 1)]
    assert len(plan_reads(spaced, max_gap=0)) == 3
    assert [(b.address, b.count) for b in plan_reads(spaced, max_gap=2, max_bits=20)] == [(0, 18), (40, 1)]


def _profile(tmp_path: Path, points: str, fc: int = 2) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(f"model: m\nvendor: v\nsource: s\ncategory: other\nfunction_code: {fc}\npoints:\n{points}",
                    encoding="utf-8")
    return path


def test_bool_is_bit_and_bits_live_only_on_fc1_and_fc2(tmp_path: Path) -> None:
    profile = load_profile(_profile(tmp_path, "  door: {address: 3, type: bool, kind: state}\n"))
    assert profile.points["door"].type is DataType.BIT and profile.points["door"].registers == 1
    with pytest.raises(ConfigError) as bad:
        load_profile(_profile(tmp_path, "  door: {address: 3, type: bit}\n  level: {address: 0, type: uint16}\n"))
    assert any("points.level" in p and "give type bit" in p and ":8:" in p for p in bad.value.problems), bad.value.problems
    with pytest.raises(ConfigError) as bad:
        load_profile(_profile(tmp_path, "  door: {address: 3, type: bit}\n", fc=3))
    assert any("points.door" in p and "not FC3" in p for p in bad.value.problems), bad.value.problems
    with pytest.raises(ConfigError, match="invalid profile"):
        load_profile(_profile(tmp_path, "  n: {address: 0, type: bit, kind: counter}\n"))
    mixed = load_profile(_profile(tmp_path, "  door: {address: 3, type: bit}\n"
                                            "  level: {address: 0, type: uint16, function_code: 3}\n"))
    assert mixed.spec_order(mixed.points["level"])[0] == 3


def test_shipped_di_module_and_lift_box() -> None:
    library = ProfileLibrary([])
    di = library.get("generic_di8_module")
    assert [(p.address, p.type, di.spec_order(p)[0]) for p in di.points.values()] == [(a, DataType.BIT, 2) for a in range(8)]
    assert "https://www.waveshare.com/wiki/Modbus_RTU_IO_8CH" in di.source
    lift = library.get("generic_lift_box")
    assert "template" in lift.source and lift.points["floor"].type is DataType.INT16  # B1 = -1
    # The alarm text names the lift's direction and door by the template's codes.
    for point, names in CONTEXT_NAMES.items():
        assert lift.points[point].names == names, point


def test_a_state_rule_on_a_point_the_profile_lacks_is_named() -> None:
    from drivers.modbus.driver import ModbusSource
    from edge.config.buses import ModbusTcpBusConfig
    from edge.config.devices import DeviceConfig

    bus = ModbusTcpBusConfig(kind="modbus_tcp", id="b", host="127.0.0.1", port=1502)
    good = {"di1": {"alarm": "fire.door_open", "active": [0]}}
    bad = {"di9": {"alarm": "water.ingress", "active": [1]},
           "di2": {"alarm": "fire.door_open", "active": [0], "context": ["floor"]}}

    def di(states: dict) -> DeviceConfig:
        return DeviceConfig.model_validate({"id": "DI-1", "name": "DI", "bus": "b", "profile": "generic_di8_module",
                                            "category": "other", "location": {"building": "1"}, "states": states})

    assert "DI-1" in ModbusSource(bus, [di(good)]).pollers
    with pytest.raises(ConfigError) as refused:
        ModbusSource(bus, [di(bad)])
    assert [p.split(" (its points")[0] for p in refused.value.problems] == [
        "device DI-1: states.di9: profile generic_di8_module reports no point di9",
        "device DI-1: states.di2: profile generic_di8_module reports no point floor",
    ]
