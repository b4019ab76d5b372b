"""Pure CJ/T 188-2004 bytes <-> values (water, heat and gas meters). No I/O here.

RS-485 and an M-Bus level converter carry the same byte stream, so one codec serves both.

Frame::

    [FE FE FE] 68 [T] [A0 A1 A2 A3 A4 A5 A6] [C] [L] [DATA ........] [CS] 16
     preamble  1b  1b  address, 7 bytes BCD   1b  1b  L bytes          1b  1b
                       low byte first

    CS = sum of the bytes from 68 to the last DATA byte, mod 256 (no +0x33 here, unlike DL/T 645)

    T   meter type: 0x10 cold water, 0x11 hot water, 0x12 drinking, 0x13 reclaimed water,
        0x20 heat (heat meter), 0x21 heat (cooling), 0x30 gas, 0x40 electricity; 0xAA wildcard
    C   bit 7 direction (1 = meter -> master), bit 6 abnormal, bits 5..0 function:
        0x01 read data     DATA = DI0 DI1 SER               reply 0x81, DATA = DI SER values...
        0x03 read address  (T = AA, address AA x7) DATA = DI(0x810A) SER   reply 0x83, address in header
        0x15 write address                                   reply 0x95
        abnormal reply C = 0xC1 / 0xC3: DATA = SER ST(2)

DI byte order: the standard sends DI0 first (0x901F as ``1F 90``); many meters and the test vector
in ``shared/docs/devices.md`` (``... 01 03 90 1F 00 3D 16``) send ``90 1F``. ``DiOrder`` picks the
request's order per meter profile; a reply must echo the DI in the order it was asked.

Read data (DI 0x901F) reply values, after DI(2) and SER(1)::

    water / gas (T 0x1x, 0x3x), 19 bytes     heat (T 0x2x), 43 bytes
    current total     4 BCD (.01) + unit     settlement-day heat  4 BCD (.01) + unit
    settlement total  4 BCD (.01) + unit     current heat         4 BCD (.01) + unit
    real time         7 (ss mm hh DD MM YYYY) heat power          4 BCD (.01) + unit
    status            2                      flow rate            4 BCD (.0001) + unit
                                             cumulative flow      4 BCD (.01) + unit
                                             supply temperature   3 BCD (.01 °C)
                                             return temperature   3 BCD (.01 °C)
                                             working time         3 BCD (h)
                                             real time            7
                                             status               2

Unit bytes (CJ/T 188-2004 table): 0x02 Wh, 0x05 kWh, 0x08 MWh, 0x0A MWh x100, 0x01 J, 0x0B kJ,
0x0E MJ, 0x11 GJ, 0x13 GJ x100, 0x14 W, 0x17 kW, 0x1A MW, 0x29 L, 0x2C m³, 0x32 L/h, 0x35 m³/h.
Status bits: see ``StatusBits`` (masks are data; the defaults follow devices.md 5 b)).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from drivers.dlt645.codec import (
    FrameError,
    Scan,
    Verdict,
    bcd_to_int,
    checksum,
    int_to_bcd,
)

START = 0x68
END = 0x16
PREAMBLE = b"\xfe\xfe\xfe"
HEADER_LENGTH = 11  # 68 T A0..A6 C L
WILDCARD_TYPE = 0xAA
WILDCARD_ADDRESS = "AAAAAAAAAAAAAA"

READ_DATA = 0x01
READ_ADDRESS = 0x03
WRITE_ADDRESS = 0x15
DIRECTION_BIT = 0x80
ABNORMAL_BIT = 0x40

DI_READ_DATA = 0x901F
DI_READ_ADDRESS = 0x810A

WATER_TYPES = frozenset(range(0x10, 0x1A))
HEAT_TYPES = frozenset(range(0x20, 0x2A))
GAS_TYPES = frozenset(range(0x30, 0x3A))
KNOWN_TYPES = WATER_TYPES | HEAT_TYPES | GAS_TYPES | frozenset(range(0x40, 0x4A)) | {WILDCARD_TYPE}

# unit byte -> (canonical unit, factor into it). Heat energy is reported in kWh (1 GJ = 277.78 kWh).
UNIT_CODES: dict[int, tuple[str, float]] = {
    0x02: ("kWh", 1e-3),
    0x05: ("kWh", 1.0),
    0x08: ("kWh", 1e3),
    0x0A: ("kWh", 1e5),
    0x01: ("kWh", 1 / 3.6e6),
    0x0B: ("kWh", 1 / 3600),
    0x0E: ("kWh", 1 / 3.6),
    0x11: ("kWh", 1e3 / 3.6),
    0x13: ("kWh", 1e5 / 3.6),
    0x14: ("W", 1.0),
    0x17: ("W", 1e3),
    0x1A: ("W", 1e6),
    0x29: ("m³", 1e-3),
    0x2C: ("m³", 1.0),
    0x32: ("m³/h", 1e-3),
    0x35: ("m³/h", 1.0),
}
UNIT_BYTE: dict[str, int] = {"kWh": 0x05, "W": 0x14, "m³": 0x2C, "m³/h": 0x35}


class DiOrder(StrEnum):
    STANDARD = "standard"  # DI0 first: 0x901F sent as 1F 90
    HIGH_FIRST = "high_first"  # 0x901F sent as 90 1F (devices.md's vector, many water meters)


def di_bytes(di: int, order: DiOrder = DiOrder.STANDARD) -> bytes:
    return di.to_bytes(2, "little" if order is DiOrder.STANDARD else "big")


def encode_address(address: str) -> bytes:
    """14 digits as on the label -> 7 bytes low first; ``AAAAAAAAAAAAAA`` is the wildcard."""
    text = address.strip().upper()
    if not text or len(text) > 14:
        raise ValueError(f"meter address {address!r}: 1 to 14 digits")
    text = text.rjust(14, "0")
    if text != WILDCARD_ADDRESS and not text.isdigit():
        raise ValueError(f"meter address {address!r}: decimal digits only (or AAAAAAAAAAAAAA)")
    return bytes.fromhex(text)[::-1]


def decode_address(raw: bytes) -> str:
    return raw[::-1].hex().upper()


@dataclass(frozen=True, slots=True)
class Frame:
    meter_type: int
    address: str
    control: int
    data: bytes

    @property
    def is_reply(self) -> bool:
        return bool(self.control & DIRECTION_BIT)

    @property
    def is_abnormal(self) -> bool:
        return bool(self.control & ABNORMAL_BIT)

    @property
    def function(self) -> int:
        return self.control & 0x3F


def encode_frame(meter_type: int, address: str, control: int, data: bytes = b"", *, preamble: bytes = PREAMBLE) -> bytes:
    if len(data) > 255:
        raise ValueError(f"DATA of {len(data)} bytes does not fit the length byte")
    body = bytes([START, meter_type]) + encode_address(address) + bytes([control, len(data)]) + data
    return preamble + body + bytes([checksum(body), END])


def scan_frame(buf: bytes) -> Scan:
    """Find the first frame in a byte stream (see ``drivers.dlt645.codec.Scan``).

    CJ/T 188 has no second start byte to synchronise on, so a 0x68 only starts a frame when the
    next byte is a known meter type; a wrong end byte or checksum makes the candidate corrupt.
    """
    i = 0
    garbage = 0
    n = len(buf)
    while i < n:
        byte = buf[i]
        if byte != START:
            if byte != 0xFE:
                garbage += 1
            i += 1
            continue
        if n - i < 2:
            return Scan(Verdict.NEED_MORE, i, garbage)
        if buf[i + 1] not in KNOWN_TYPES:
            garbage += 1
            i += 1
            continue
        if n - i < HEADER_LENGTH:
            return Scan(Verdict.NEED_MORE, i, garbage)
        length = buf[i + 10]
        total = HEADER_LENGTH + length + 2
        if n - i < total:
            return Scan(Verdict.NEED_MORE, i, garbage)
        frame = buf[i : i + total]
        if frame[-1] != END:
            return Scan(Verdict.CORRUPT, i, garbage, total, reason="end")
        if checksum(frame[:-2]) != frame[-2]:
            return Scan(Verdict.CORRUPT, i, garbage, total, reason="checksum")
        decoded = Frame(frame[1], decode_address(frame[2:9]), frame[9], bytes(frame[11 : 11 + length]))
        return Scan(Verdict.OK, i, garbage, total, decoded)
    return Scan(Verdict.NOTHING, n, garbage)


def decode_frame(raw: bytes) -> Frame:
    """Exactly one frame (preamble allowed); raises ``FrameError``."""
    start = 0
    while start < len(raw) and raw[start] == 0xFE:
        start += 1
    scan = scan_frame(raw[start:])
    if scan.verdict is Verdict.NEED_MORE:
        raise FrameError("truncated", f"truncated frame: {len(raw) - start} bytes: {raw.hex(' ')}")
    if scan.verdict is Verdict.CORRUPT:
        raise FrameError(scan.reason, f"corrupt frame ({scan.reason}): {raw.hex(' ')}")
    if scan.verdict is Verdict.NOTHING or scan.skipped:
        raise FrameError("garbage", f"no frame at the start: {raw.hex(' ')}")
    if start + scan.length != len(raw):
        raise FrameError("length", f"{len(raw) - start - scan.length} bytes after the frame: {raw.hex(' ')}")
    frame: Frame | None = scan.frame  # Scan carries either protocol's frame; this scanner's is a CJ/T 188 one
    assert frame is not None
    return frame


# --------------------------------------------------------------------------- requests and replies


def read_data_request(meter_type: int, address: str, ser: int, *, order: DiOrder = DiOrder.STANDARD,
                      preamble: bytes = PREAMBLE) -> bytes:
    return encode_frame(meter_type, address, READ_DATA, di_bytes(DI_READ_DATA, order) + bytes([ser & 0xFF]),
                        preamble=preamble)


def read_address_request(ser: int = 0, *, order: DiOrder = DiOrder.STANDARD, preamble: bytes = PREAMBLE) -> bytes:
    return encode_frame(WILDCARD_TYPE, WILDCARD_ADDRESS, READ_ADDRESS,
                        di_bytes(DI_READ_ADDRESS, order) + bytes([ser & 0xFF]), preamble=preamble)


def read_data_reply(meter_type: int, address: str, ser: int, payload: bytes, *, order: DiOrder = DiOrder.STANDARD,
                    preamble: bytes = b"") -> bytes:
    return encode_frame(meter_type, address, READ_DATA | DIRECTION_BIT,
                        di_bytes(DI_READ_DATA, order) + bytes([ser & 0xFF]) + payload, preamble=preamble)


def read_address_reply(meter_type: int, address: str, ser: int, *, order: DiOrder = DiOrder.STANDARD,
                       preamble: bytes = b"") -> bytes:
    return encode_frame(meter_type, address, READ_ADDRESS | DIRECTION_BIT,
                        di_bytes(DI_READ_ADDRESS, order) + bytes([ser & 0xFF]), preamble=preamble)


def abnormal_reply(meter_type: int, address: str, ser: int, status: int = 0, *, preamble: bytes = b"") -> bytes:
    return encode_frame(meter_type, address, READ_DATA | DIRECTION_BIT | ABNORMAL_BIT,
                        bytes([ser & 0xFF]) + status.to_bytes(2, "little"), preamble=preamble)


class AbnormalReply(Exception):
    """The meter answered with an abnormal reply (C bit 6); ``status`` is its ST word."""

    def __init__(self, status: int) -> None:
        super().__init__(f"abnormal reply, status {status:#06x}")
        self.status = status


def _check_di(data: bytes, di: int, order: DiOrder, ser: int) -> bytes:
    if len(data) < 3:
        raise FrameError("length", f"reply of {len(data)} data bytes has no DI and SER")
    if data[:2] != di_bytes(di, order):
        raise FrameError("mismatch", f"reply DI {data[:2].hex(' ')}, asked {di_bytes(di, order).hex(' ')}")
    if data[2] != ser & 0xFF:
        raise FrameError("mismatch", f"reply SER {data[2]}, asked {ser & 0xFF}")
    return data[3:]


def check_read_reply(frame: Frame, meter_type: int, address: str, ser: int, *,
                     order: DiOrder = DiOrder.STANDARD) -> bytes:
    """Accept ``frame`` only as the answer to this read (same type, meter, function, DI, SER); the values."""
    if frame.address != decode_address(encode_address(address)):
        raise FrameError("mismatch", f"reply from meter {frame.address}, asked {address}")
    if frame.meter_type != meter_type:
        raise FrameError("mismatch", f"reply from a meter of type {frame.meter_type:#04x}, asked {meter_type:#04x}")
    if not frame.is_reply or frame.function != READ_DATA:
        raise FrameError("mismatch", f"C={frame.control:#04x} is not a reply to read data")
    if frame.is_abnormal:
        if len(frame.data) < 3:
            raise FrameError("length", f"abnormal reply with {len(frame.data)} data bytes, expected 3")
        if frame.data[0] != ser & 0xFF:
            raise FrameError("mismatch", f"abnormal reply SER {frame.data[0]}, asked {ser & 0xFF}")
        raise AbnormalReply(int.from_bytes(frame.data[1:3], "little"))
    return _check_di(frame.data, DI_READ_DATA, order, ser)


def check_address_reply(frame: Frame, ser: int, *, order: DiOrder = DiOrder.STANDARD) -> tuple[int, str]:
    """(meter type, address) from the answer to a read-address request."""
    if frame.control != READ_ADDRESS | DIRECTION_BIT:
        raise FrameError("mismatch", f"C={frame.control:#04x} is not a reply to read address")
    _check_di(frame.data, DI_READ_ADDRESS, order, ser)
    return frame.meter_type, frame.address


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class StatusBits:
    """Where the status word (ST1 low byte, ST2 high byte) keeps valve and battery state.

    Defaults follow devices.md 5 b) (xijunzhou ``cj188.h``: valve mask 0xC0, 0x40 closed, 0xC0
    abnormal; 0x20 battery low). Meters that use the low bits (D1 D0 valve, D2 battery) set them
    in the profile.
    """

    valve_mask: int = 0xC0
    valve_closed: int = 0x40
    valve_abnormal: int = 0xC0
    battery_low: int = 0x20

    def valve(self, status: int) -> int:
        """0 open, 1 closed, 2 abnormal."""
        bits = status & self.valve_mask
        if bits == self.valve_abnormal:
            return 2
        if bits == self.valve_closed:
            return 1
        return 0

    def low_battery(self, status: int) -> bool:
        return bool(status & self.battery_low)

    def encode(self, valve: int, low_battery: bool) -> int:
        bits = {0: 0, 1: self.valve_closed, 2: self.valve_abnormal}[valve]
        return bits | (self.battery_low if low_battery else 0)


@dataclass(frozen=True, slots=True)
class MeterData:
    """The values of one 901F reply, in canonical units (volume m³, energy kWh, power W, flow m³/h)."""

    values: dict[str, tuple[float, str]]
    status: int
    clock: datetime | None


def _quantity(raw: bytes, decimals: int, where: str) -> tuple[float, str]:
    unit_byte = raw[4]
    unit = UNIT_CODES.get(unit_byte)
    if unit is None:
        raise FrameError("unit", f"{where}: unknown unit byte {unit_byte:#04x}")
    return bcd_to_int(raw[:4]) / 10**decimals * unit[1], unit[0]


def decode_clock(raw: bytes) -> datetime | None:
    """Ss mm hh DD MM YYYY (BCD, low first); ``None`` when the meter has no valid clock (zeros)."""
    second, minute, hour, day, month = (bcd_to_int(raw[i : i + 1]) for i in range(5))
    year = bcd_to_int(raw[5:7])
    try:
        return datetime(year, month, day, hour, minute, second)  # the meter's local time (naive)
    except ValueError:
        return None


def encode_clock(when: datetime) -> bytes:
    parts = (when.second, when.minute, when.hour, when.day, when.month)
    return b"".join(int_to_bcd(p, 1) for p in parts) + int_to_bcd(when.year, 2)


def decode_meter_data(meter_type: int, payload: bytes) -> MeterData:
    """The 901F values of a water / gas or heat meter (see the module docstring for the layouts)."""
    if meter_type in HEAT_TYPES:
        if len(payload) != 43:
            raise FrameError("length", f"heat meter 901F data of {len(payload)} bytes, expected 43")
        values = {
            "heat_settlement": _quantity(payload[0:5], 2, "settlement-day heat"),
            "heat_energy": _quantity(payload[5:10], 2, "current heat"),
            "heat_power": _quantity(payload[10:15], 2, "heat power"),
            "flow_rate": _quantity(payload[15:20], 4, "flow rate"),
            "volume": _quantity(payload[20:25], 2, "cumulative flow"),
            "supply_temperature": (bcd_to_int(payload[25:28]) / 100, "°C"),
            "return_temperature": (bcd_to_int(payload[28:31]) / 100, "°C"),
            "working_time": (float(bcd_to_int(payload[31:34])), "h"),
        }
        clock_raw, status_raw = payload[34:41], payload[41:43]
    else:
        if len(payload) != 19:
            raise FrameError("length", f"901F data of {len(payload)} bytes, expected 19")
        values = {
            "volume": _quantity(payload[0:5], 2, "current cumulative flow"),
            "volume_settlement": _quantity(payload[5:10], 2, "settlement-day flow"),
        }
        clock_raw, status_raw = payload[10:17], payload[17:19]
    return MeterData(values, int.from_bytes(status_raw, "little"), decode_clock(clock_raw))


def _encode_quantity(value: float, unit: str, decimals: int) -> bytes:
    return int_to_bcd(round(value * 10**decimals), 4) + bytes([UNIT_BYTE[unit]])


def encode_meter_data(meter_type: int, values: dict[str, float], status: int, clock: datetime) -> bytes:
    """The simulator's side of ``decode_meter_data`` (canonical units in, unit bytes kWh / W / m³ / m³/h)."""
    if meter_type in HEAT_TYPES:
        return (
            _encode_quantity(values.get("heat_settlement", 0.0), "kWh", 2)
            + _encode_quantity(values.get("heat_energy", 0.0), "kWh", 2)
            + _encode_quantity(values.get("heat_power", 0.0), "W", 2)
            + _encode_quantity(values.get("flow_rate", 0.0), "m³/h", 4)
            + _encode_quantity(values.get("volume", 0.0), "m³", 2)
            + int_to_bcd(round(values.get("supply_temperature", 0.0) * 100), 3)
            + int_to_bcd(round(values.get("return_temperature", 0.0) * 100), 3)
            + int_to_bcd(round(values.get("working_time", 0.0)), 3)
            + encode_clock(clock)
            + status.to_bytes(2, "little")
        )
    return (
        _encode_quantity(values.get("volume", 0.0), "m³", 2)
        + _encode_quantity(values.get("volume_settlement", 0.0), "m³", 2)
        + encode_clock(clock)
        + status.to_bytes(2, "little")
    )

