"""Advertisement bytes -> measurements: BTHome v2 and the LYWSD03MMC custom firmware formats. Pure, no I/O.

BTHome v2 (https://bthome.io/format), service data of 16-bit UUID 0xFCD2::

    byte 0      device information: bit 0 encrypted, bit 2 trigger-based, bits 5-7 version (2)
    byte 1..    objects: one id byte, then a fixed-size little-endian value (size and factor by id),
                objects in ascending id order; e.g. 02 CA 09 = temperature 0x09CA * 0.01 = 25.06 °C

An unknown object id stops decoding (its size is unknown, so nothing after it can be located); the
objects before it are kept and the stop is reported. Encrypted frames are refused (no key handling
here: configure the sensor unencrypted or use a format below).

pvvx custom format, service data of UUID 0x181A, 15 bytes, all little-endian::

    0..5 MAC (reversed)  6..7 temperature int16 x0.01 °C  8..9 humidity uint16 x0.01 %
    10..11 battery mV  12 battery %  13 measurement counter  14 flags

ATC1441 format, service data of UUID 0x181A, 13 bytes, big-endian::

    0..5 MAC  6..7 temperature int16 x0.1 °C  8 humidity %  9 battery %  10..11 battery mV  12 counter

Both custom formats carry the MAC, which must match the advertiser's (a mismatch is a relayed or
corrupt frame and is refused).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

BTHOME_UUID = "0000fcd2-0000-1000-8000-00805f9b34fb"
ENVIRONMENTAL_UUID = "0000181a-0000-1000-8000-00805f9b34fb"


class AdvertisementError(ValueError):
    """Advertisement bytes that do not decode; the message names the format and the byte."""


@dataclass(frozen=True, slots=True)
class Measurement:
    point: str
    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class Decoded:
    format: str  # "bthome_v2", "pvvx", "atc1441"
    measurements: tuple[Measurement, ...]
    counter: int | None  # packet id / measurement counter: a repeat of the same counter is the same measurement
    warnings: tuple[str, ...] = field(default=())


# object id -> (point name, struct code little-endian, size, factor, unit)
# Units outside the canonical table keep their unit in the point name (e.g. illuminance_lux, co2_ppm).
_BTHOME: dict[int, tuple[str, str, int, float, str]] = {
    0x00: ("packet_id", "B", 1, 1, ""),
    0x01: ("battery", "B", 1, 1, "%"),
    0x02: ("temperature", "h", 2, 0.01, "°C"),
    0x03: ("humidity", "H", 2, 0.01, "%"),
    0x04: ("pressure", "U24", 3, 0.01 * 1e-4, "MPa"),  # hPa -> MPa
    0x05: ("illuminance_lux", "U24", 3, 0.01, ""),
    0x08: ("dewpoint", "h", 2, 0.01, "°C"),
    0x09: ("count", "B", 1, 1, ""),
    0x0A: ("energy", "U24", 3, 0.001, "kWh"),
    0x0B: ("power", "U24", 3, 0.01, "W"),
    0x0C: ("voltage", "H", 2, 0.001, "V"),
    0x0D: ("pm2_5_ugm3", "H", 2, 1, ""),
    0x0E: ("pm10_ugm3", "H", 2, 1, ""),
    0x0F: ("generic_boolean", "B", 1, 1, ""),
    0x10: ("power_on", "B", 1, 1, ""),
    0x11: ("opening", "B", 1, 1, ""),
    0x12: ("co2_ppm", "H", 2, 1, ""),
    0x13: ("tvoc_ugm3", "H", 2, 1, ""),
    0x14: ("moisture", "H", 2, 0.01, "%"),
    0x15: ("battery_low", "B", 1, 1, ""),
    0x16: ("battery_charging", "B", 1, 1, ""),
    0x17: ("carbon_monoxide", "B", 1, 1, ""),
    0x18: ("cold", "B", 1, 1, ""),
    0x19: ("connectivity", "B", 1, 1, ""),
    0x1A: ("door", "B", 1, 1, ""),
    0x1B: ("garage_door", "B", 1, 1, ""),
    0x1C: ("gas_detected", "B", 1, 1, ""),
    0x1D: ("heat", "B", 1, 1, ""),
    0x1E: ("light", "B", 1, 1, ""),
    0x1F: ("lock", "B", 1, 1, ""),
    0x20: ("moisture_detected", "B", 1, 1, ""),
    0x21: ("motion", "B", 1, 1, ""),
    0x22: ("moving", "B", 1, 1, ""),
    0x23: ("occupancy", "B", 1, 1, ""),
    0x24: ("plug", "B", 1, 1, ""),
    0x25: ("presence", "B", 1, 1, ""),
    0x26: ("problem", "B", 1, 1, ""),
    0x27: ("running", "B", 1, 1, ""),
    0x28: ("safety", "B", 1, 1, ""),
    0x29: ("smoke", "B", 1, 1, ""),
    0x2A: ("sound", "B", 1, 1, ""),
    0x2B: ("tamper", "B", 1, 1, ""),
    0x2C: ("vibration", "B", 1, 1, ""),
    0x2D: ("window", "B", 1, 1, ""),
    0x2E: ("humidity", "B", 1, 1, "%"),
    0x2F: ("moisture", "B", 1, 1, "%"),
    0x3A: ("button_event", "B", 1, 1, ""),
    0x3C: ("dimmer_event", "H", 2, 1, ""),
    0x3D: ("count", "H", 2, 1, ""),
    0x3E: ("count", "I", 4, 1, ""),
    0x3F: ("rotation", "h", 2, 0.1, "°"),
    0x40: ("distance", "H", 2, 0.001, "m"),  # mm -> m
    0x41: ("distance", "H", 2, 0.1, "m"),
    0x42: ("duration", "U24", 3, 0.001, "s"),
    0x43: ("current", "H", 2, 0.001, "A"),
    0x45: ("temperature", "h", 2, 0.1, "°C"),
    0x46: ("uv_index", "B", 1, 0.1, ""),
    0x47: ("volume", "H", 2, 0.1 * 1e-3, "m³"),  # L -> m³
    0x48: ("volume", "H", 2, 1e-6, "m³"),  # mL -> m³
    0x49: ("flow", "H", 2, 0.001, "m³/h"),
    0x4A: ("voltage", "H", 2, 0.1, "V"),
    0x4B: ("gas", "U24", 3, 0.001, "m³"),
    0x4C: ("gas", "I", 4, 0.001, "m³"),
    0x4D: ("energy", "I", 4, 0.001, "kWh"),
    0x4E: ("volume", "I", 4, 0.001 * 1e-3, "m³"),  # L -> m³
    0x4F: ("water", "I", 4, 0.001 * 1e-3, "m³"),  # L -> m³
}


def decode_bthome(data: bytes) -> Decoded:
    """BTHome v2 service data (without the UUID); ``AdvertisementError`` when it is not usable at all."""
    if not data:
        raise AdvertisementError("bthome: empty service data")
    info = data[0]
    version = info >> 5
    if version != 2:
        raise AdvertisementError(f"bthome: version {version} in device information byte {info:#04x} (only v2 is read)")
    if info & 0x01:
        raise AdvertisementError("bthome: encrypted frame (no bind key configured; set the sensor to unencrypted)")
    out: list[Measurement] = []
    warnings: list[str] = []
    counter: int | None = None
    pos = 1
    while pos < len(data):
        object_id = data[pos]
        spec = _BTHOME.get(object_id)
        if spec is None:
            warnings.append(f"bthome: unknown object id {object_id:#04x} at byte {pos}; {len(data) - pos - 1} bytes not read")
            break
        name, code, size, factor, unit = spec
        raw_bytes = data[pos + 1:pos + 1 + size]
        if len(raw_bytes) < size:
            warnings.append(f"bthome: object {object_id:#04x} at byte {pos} cut short ({len(raw_bytes)} of {size} bytes)")
            break
        raw = int.from_bytes(raw_bytes, "little") if code == "U24" else struct.unpack("<" + code, raw_bytes)[0]
        pos += 1 + size
        if object_id == 0x00:
            counter = int(raw)
            continue
        out.append(Measurement(name, round(raw * factor, 9), unit))
    if not out:
        raise AdvertisementError("bthome: no measurement in the frame" + (f" ({warnings[0]})" if warnings else ""))
    return Decoded("bthome_v2", tuple(out), counter, tuple(warnings))


def _mac_bytes(address: str) -> bytes:
    return bytes.fromhex(address.replace(":", "").replace("-", ""))


def decode_environmental(data: bytes, address: str) -> Decoded:
    """Service data of UUID 0x181A from the pvvx (15 bytes) or ATC1441 (13 bytes) firmware."""
    mac = _mac_bytes(address)
    if len(data) == 15:
        if data[0:6] != mac[::-1]:
            raise AdvertisementError(f"pvvx: MAC in the frame {data[5::-1].hex(':')} is not the advertiser's {address}")
        temp, hum, mv, batt, counter, _flags = struct.unpack_from("<hHHBBB", data, 6)
        return Decoded("pvvx", (
            Measurement("temperature", temp / 100, "°C"), Measurement("humidity", hum / 100, "%"),
            Measurement("battery", float(batt), "%"), Measurement("battery_voltage", mv / 1000, "V"),
        ), counter)
    if len(data) == 13:
        if data[0:6] != mac:
            raise AdvertisementError(f"atc1441: MAC in the frame {data[0:6].hex(':')} is not the advertiser's {address}")
        temp, hum, batt, mv, counter = struct.unpack_from(">hBBHB", data, 6)
        return Decoded("atc1441", (
            Measurement("temperature", temp / 10, "°C"), Measurement("humidity", float(hum), "%"),
            Measurement("battery", float(batt), "%"), Measurement("battery_voltage", mv / 1000, "V"),
        ), counter)
    raise AdvertisementError(f"0x181A: {len(data)} bytes is neither the pvvx (15) nor the ATC1441 (13) layout")


def decode(service_data: dict[str, bytes], address: str) -> Decoded | None:
    """The first known format in an advertisement's service data; ``None`` when it carries none."""
    if BTHOME_UUID in service_data:
        return decode_bthome(service_data[BTHOME_UUID])
    if ENVIRONMENTAL_UUID in service_data:
        return decode_environmental(service_data[ENVIRONMENTAL_UUID], address)
    return None
