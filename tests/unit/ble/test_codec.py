"""BLE advertisement decoding from fixed bytes: BTHome v2 spec examples and the LYWSD03MMC custom firmware layouts.

No radio here: these are bytes, as the driver's scanner interface hands them over.
"""

from __future__ import annotations

import pytest

from drivers.ble.codec import AdvertisementError, decode, decode_bthome, decode_environmental
from simulators.ble.frames import atc1441, bthome_door, bthome_th, pvvx

PV = "A4:C1:38:12:34:56"


def values(decoded: object) -> dict[str, float]:
    return {m.point: m.value for m in decoded.measurements}  # type: ignore[attr-defined]


def test_bthome_spec_example_objects() -> None:
    # bthome.io examples: 02CA09 -> 25.06 °C, 03BF13 -> 50.55 %, 0161 -> 97 %, 0C020C -> 3.074 V, 04138A01 -> 1008.83 hPa
    frame = bytes.fromhex("40" "0009" "0161" "02CA09" "03BF13" "04138A01" "0C020C")
    decoded = decode_bthome(frame)
    assert decoded.format == "bthome_v2" and decoded.counter == 9
    got = values(decoded)
    assert got["temperature"] == pytest.approx(25.06) and got["humidity"] == pytest.approx(50.55)
    assert got["battery"] == 97 and got["voltage"] == pytest.approx(3.074)
    assert got["pressure"] == pytest.approx(0.100883)  # 1008.83 hPa in MPa
    assert {m.point: m.unit for m in decoded.measurements}["pressure"] == "MPa"


def test_bthome_negative_temperature_binary_and_coarse_objects() -> None:
    shelly = bytes.fromhex("44" "0010" "0164" "2E37" "45F6FF")  # Shelly BLU H&T style: humidity 55 %, -1.0 °C
    got = values(decode_bthome(shelly))
    assert got == {"battery": 100, "humidity": 55, "temperature": pytest.approx(-1.0)}
    assert values(decode_bthome(bthome_door(3, True, 90)))["door"] == 1


def test_bthome_unknown_object_keeps_what_came_before_and_says_where() -> None:
    decoded = decode_bthome(bytes.fromhex("40" "0161" "F0AABB"))
    assert values(decoded) == {"battery": 97}
    assert "unknown object id 0xf0 at byte 3" in decoded.warnings[0]
    with pytest.raises(AdvertisementError, match="encrypted"):
        decode_bthome(bytes.fromhex("41" "0161"))
    with pytest.raises(AdvertisementError, match="version 1"):
        decode_bthome(bytes.fromhex("20" "0161"))
    with pytest.raises(AdvertisementError, match="no measurement"):
        decode_bthome(bytes.fromhex("40" "0007"))
    cut = decode_bthome(bytes.fromhex("40" "0161" "02CA"))
    assert values(cut) == {"battery": 97} and "cut short" in cut.warnings[0]


def test_pvvx_layout_little_endian_with_reversed_mac() -> None:
    frame = bytes.fromhex("563412 38c1a4".replace(" ", "")) + bytes.fromhex("5403" "b123" "860b" "54" "11" "00")
    assert frame == pvvx(PV, 8.52, 91.37, 2950, 84, 17)
    decoded = decode_environmental(frame, PV)
    assert decoded.format == "pvvx" and decoded.counter == 17
    assert values(decoded) == {"temperature": 8.52, "humidity": 91.37, "battery": 84, "battery_voltage": 2.95}
    with pytest.raises(AdvertisementError, match="not the advertiser's"):
        decode_environmental(frame, "A4:C1:38:00:00:01")


def test_atc1441_layout_big_endian() -> None:
    mac = "A4:C1:38:AB:CD:EF"
    frame = atc1441(mac, -3.4, 64, 77, 2870, 201)
    assert frame.hex() == "a4c138abcdef" "ffde" "40" "4d" "0b36" "c9"
    assert values(decode_environmental(frame, mac)) == {"temperature": -3.4, "humidity": 64, "battery": 77,
                                                        "battery_voltage": 2.87}
    with pytest.raises(AdvertisementError, match="neither the pvvx"):
        decode_environmental(frame[:10], mac)


def test_dispatch_by_service_uuid() -> None:
    th = bthome_th(1, 21.5, 40.0, 99)
    assert decode({"0000fcd2-0000-1000-8000-00805f9b34fb": th}, PV).format == "bthome_v2"  # type: ignore[union-attr]
    assert decode({"0000feaa-0000-1000-8000-00805f9b34fb": b"\x00"}, PV) is None
