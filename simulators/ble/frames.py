"""Advertisement service data as the sensors build it, for the replayer's recordings and the tests.

Layouts are those of ``drivers.ble.codec`` (BTHome v2 from bthome.io/format, the pvvx and ATC1441
custom firmware of the Xiaomi LYWSD03MMC); the builders write them independently of the decoder
(plain ``struct`` calls from the published tables) so a test that round-trips through both is a
real check, and the fixed vectors in the tests pin the bytes themselves.
"""

from __future__ import annotations

import struct

BTHOME = "0000fcd2-0000-1000-8000-00805f9b34fb"
ENVIRONMENTAL = "0000181a-0000-1000-8000-00805f9b34fb"


def bthome_th(packet_id: int, temperature_c: float, humidity_pct: float, battery_pct: int) -> bytes:
    """A BTHome v2 thermometer frame: packet id, battery, temperature (0.01 °C), humidity (0.01 %)."""
    return (bytes([0x40, 0x00, packet_id & 0xFF, 0x01, battery_pct])
            + b"\x02" + struct.pack("<h", round(temperature_c * 100))
            + b"\x03" + struct.pack("<H", round(humidity_pct * 100)))


def bthome_door(packet_id: int, is_open: bool, battery_pct: int) -> bytes:
    """A BTHome v2 door contact (trigger-based): packet id, battery, door open."""
    return bytes([0x44, 0x00, packet_id & 0xFF, 0x01, battery_pct, 0x1A, 1 if is_open else 0])


def pvvx(mac: str, temperature_c: float, humidity_pct: float, battery_mv: int, battery_pct: int, counter: int) -> bytes:
    """pvvx custom format: reversed MAC, then little-endian temperature, humidity, mV, %, counter, flags."""
    mac_bytes = bytes.fromhex(mac.replace(":", ""))[::-1]
    return mac_bytes + struct.pack("<hHHBBB", round(temperature_c * 100), round(humidity_pct * 100), battery_mv,
                                   battery_pct, counter & 0xFF, 0)


def atc1441(mac: str, temperature_c: float, humidity_pct: int, battery_pct: int, battery_mv: int, counter: int) -> bytes:
    """ATC1441 format: MAC in order, then big-endian temperature (0.1 °C), humidity %, battery %, mV, counter."""
    return bytes.fromhex(mac.replace(":", "")) + struct.pack(">hBBHB", round(temperature_c * 10), humidity_pct,
                                                             battery_pct, battery_mv, counter & 0xFF)
