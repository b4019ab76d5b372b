"""Pure Modbus bytes <-> values: register decoding, frames, CRC and wire timing. No I/O here.

Register values
---------------
A point is one or more 16-bit registers. Meters disagree on two orders, so both are explicit:

* ``byte_order``: the order of the two bytes *inside* each register (``big`` = high byte first,
  as the Modbus spec says);
* ``word_order``: the order of the registers of a multi-register value (``big`` = high word first).

The four combinations for a 32-bit value whose big-endian bytes are ``A B C D``:

    ============  ===========  ==========  ========================================
    byte_order    word_order   wire bytes  seen on
    ============  ===========  ==========  ========================================
    big           big          A B C D     CHINT, Eastron, Acrel ("ABCD")
    big           little       C D A B     many PLCs ("CDAB", word swapped)
    little        big          B A D C     the disputed DDSUViewer doc ("BADC")
    little        little       D C B A     Xintai water meter ("DCBA", byte reversed)
    ============  ===========  ==========  ========================================

Frames (what ``check_rtu_response`` / ``check_tcp_response`` validate before pymodbus sees them)
-----------------------------------------------------------------------------------------------
RTU, the serial line: silence of 3.5 characters separates frames; the CRC is sent low byte first::

    [ t3.5 ][ unit ][ fc ][ data ............ ][ crc lo ][ crc hi ][ t3.5 ]
              1b      1b     Nb                  1b        1b

    read request   unit fc addr_hi addr_lo cnt_hi cnt_lo crc crc          8 bytes
    read response  unit fc byte_count data(2*cnt) crc crc                 5 + 2*cnt bytes
    bit response   unit fc byte_count bits((cnt+7)//8) crc crc            FC1 coils / FC2 inputs
    exception      unit fc|0x80 exception_code crc crc                    5 bytes

TCP: the MBAP header replaces address and CRC::

    [ tid ][ pid=0 ][ length ][ unit ][ fc ][ data ]
      2b      2b       2b        1b     1b     Nb        length = 1 (unit) + 1 (fc) + N

Failure modes are values, not exceptions: the checkers return a ``FrameCheck`` so the transport
can count a corrupt frame and fail the one transaction fast instead of waiting for a timeout.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum

# --------------------------------------------------------------------------- data types


class DataType(StrEnum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT64 = "float64"
    BIT = "bit"  # one coil (FC1) or discrete input (FC2); profiles may also write ``bool``

    @property
    def registers(self) -> int:
        """How many addresses one value occupies: 16-bit registers, or for ``bit`` one coil / input."""
        return 1 if self is DataType.BIT else _STRUCT[self][1] // 2


# struct format character and size in bytes, for the value in big-endian order.
_STRUCT: dict[DataType, tuple[str, int]] = {
    DataType.INT16: ("h", 2),
    DataType.UINT16: ("H", 2),
    DataType.INT32: ("i", 4),
    DataType.UINT32: ("I", 4),
    DataType.FLOAT32: ("f", 4),
    DataType.INT64: ("q", 8),
    DataType.UINT64: ("Q", 8),
    DataType.FLOAT64: ("d", 8),
}

Order = str  # "big" | "little"
Decoder = Callable[[bytes, int], float]


def _reorder(raw: bytes, byte_order: Order, word_order: Order) -> bytes:
    """Bring wire bytes of one value into big-endian value order (the involution is its own inverse)."""
    if byte_order == "little":
        raw = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    if word_order == "little":
        raw = b"".join(raw[i : i + 2] for i in range(len(raw) - 2, -1, -2))
    return raw


def make_decoder(dtype: DataType, byte_order: Order = "big", word_order: Order = "big") -> Decoder:
    """Return ``f(buffer, byte_offset) -> value`` for one point; built once per point, called per poll.

    The fast paths (the orders that are plain big- or little-endian) are a single ``unpack_from``;
    the mixed orders reorder a slice first. Values come back as ``float`` (ints are exact up to 2**53).
    A ``bit`` decoder reads bit ``offset`` of packed coil / input bytes (``unpack_bits``' order).
    """
    if dtype is DataType.BIT:
        return lambda buf, off: float((buf[off >> 3] >> (off & 7)) & 1)
    char, size = _STRUCT[dtype]
    if byte_order not in ("big", "little") or word_order not in ("big", "little"):
        raise ValueError(f"byte_order and word_order must be 'big' or 'little', not {byte_order!r}/{word_order!r}")
    if size == 2:
        fmt = struct.Struct((">" if byte_order == "big" else "<") + char)
        return lambda buf, off: float(fmt.unpack_from(buf, off)[0])
    if byte_order == word_order:
        fmt = struct.Struct((">" if byte_order == "big" else "<") + char)
        return lambda buf, off: float(fmt.unpack_from(buf, off)[0])
    big = struct.Struct(">" + char)

    def mixed(buf: bytes, off: int) -> float:
        return float(big.unpack(_reorder(bytes(buf[off : off + size]), byte_order, word_order))[0])

    return mixed


def plain_struct(dtype: DataType, byte_order: Order = "big", word_order: Order = "big") -> tuple[str, str] | None:
    """``(prefix, char)`` when a value is one plain ``struct`` unpack (``None`` for the mixed orders)."""
    char, size = _STRUCT[dtype]
    if size == 2 or byte_order == word_order:
        return (">" if byte_order == "big" else "<"), char
    return None


BlockDecoder = Callable[[bytes], Iterable[tuple[str, float]]]


def make_block_decoder(fields: Sequence[tuple[str, int, DataType, Order, Order]]) -> BlockDecoder:
    """Return ``f(block bytes) -> (name, value) pairs`` for the points of one read block.

    ``fields`` are ``(name, byte offset, type, byte order, word order)``. When the points are all
    plain unpacks in one byte order and do not overlap (the usual merged block of a meter), the whole
    block is one precompiled ``struct`` unpack with pad bytes for the gaps: one C call a poll instead
    of one call per point. Otherwise each point is decoded by its own ``make_decoder``.
    """
    layout = sorted(fields, key=lambda field: field[1])
    names = tuple(name for name, *_ in layout)
    per_point = [(name, make_decoder(dtype, bo, wo), offset) for name, offset, dtype, bo, wo in layout]

    def each_alone(data: bytes) -> list[tuple[str, float]]:
        return [(name, decode(data, offset)) for name, decode, offset in per_point]
    prefixes = set()
    fmt, end, ints = "", 0, False
    for _, offset, dtype, byte_order, word_order in layout:
        plain = plain_struct(dtype, byte_order, word_order)
        if plain is None or offset < end:
            return each_alone
        prefixes.add(plain[0])
        fmt += "x" * (offset - end) + plain[1]
        end = offset + _STRUCT[dtype][1]
        ints = ints or plain[1] not in "fd"
    if len(prefixes) != 1:
        return each_alone
    unpack = struct.Struct(prefixes.pop() + fmt).unpack_from
    if ints:  # values are floats downstream, as each point's own decoder returns them
        return lambda data: zip(names, map(float, unpack(data)), strict=True)
    return lambda data: zip(names, unpack(data), strict=True)


def decode_value(raw: bytes, dtype: DataType, byte_order: Order = "big", word_order: Order = "big") -> float:
    """Decode one value from exactly its wire bytes (convenience for tests and tools)."""
    return make_decoder(dtype, byte_order, word_order)(raw, 0)


def encode_value(value: float, dtype: DataType, byte_order: Order = "big", word_order: Order = "big") -> bytes:
    """Wire bytes for ``value``: the simulator's half of ``make_decoder``.

    Integers are rounded and clamped to the type's range (a simulated meter saturates rather than
    wrapping unless the scenario asks for a rollover, which it does by choosing the value).
    Bits are not registers: ``pack_bits`` packs them.
    """
    if dtype is DataType.BIT:
        raise ValueError("a bit is not a register value: pack coils / inputs with pack_bits")
    char, size = _STRUCT[dtype]
    if char in "fd":
        packed = struct.pack(">" + char, value)
    else:
        bits = size * 8
        lo, hi = (0, (1 << bits) - 1) if char.isupper() else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
        ivalue = 0 if math.isnan(value) else round(min(max(value, lo), hi))
        packed = struct.pack(">" + char, ivalue)
    return _reorder(packed, byte_order, word_order)


# --------------------------------------------------------------------------- bits (FC1 / FC2)
#
# A read of coils (FC1) or discrete inputs (FC2) answers the bits packed eight to a byte, the first
# requested address in the least significant bit of the first byte; the last byte is padded with
# zeros (Modbus Application Protocol V1.1b3, 6.1 and 6.2). ``count`` bits take (count + 7) // 8 bytes.


def unpack_bits(data: bytes, count: int) -> list[int]:
    """The first ``count`` bits of packed coil / input bytes, LSB of the first byte first."""
    if len(data) * 8 < count:
        raise ValueError(f"{len(data)} bytes hold fewer than {count} bits")
    return [(data[i >> 3] >> (i & 7)) & 1 for i in range(count)]


def pack_bits(bits: Sequence[int | bool]) -> bytes:
    """Pack bits as a coil / input response carries them (the simulator's half of ``unpack_bits``)."""
    out = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


def make_bit_block_decoder(fields: Sequence[tuple[str, int]]) -> BlockDecoder:
    """Return ``f(packed bytes) -> (name, 0.0 | 1.0) pairs`` for the bit points of one read block.

    ``fields`` are ``(name, bit offset from the block's first address)``; the shifts are computed once.
    """
    where = tuple((name, offset >> 3, offset & 7) for name, offset in fields)
    return lambda data: [(name, float((data[byte] >> bit) & 1)) for name, byte, bit in where]


def registers_to_bytes(registers: Sequence[int]) -> bytes:
    """Pymodbus hands registers as ints; the decoders work on the wire bytes."""
    return struct.pack(f">{len(registers)}H", *registers)


# --------------------------------------------------------------------------- CRC and frames


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """Modbus CRC-16 (poly 0xA001 reflected, init 0xFFFF). Append it low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def with_crc(frame: bytes) -> bytes:
    return frame + crc16(frame).to_bytes(2, "little")


def crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


BIT_FUNCTION_CODES = (1, 2)  # read coils, read discrete inputs: one bit per address
REGISTER_FUNCTION_CODES = (3, 4)  # read holding / input registers: 16 bits per address
READ_FUNCTION_CODES = (*BIT_FUNCTION_CODES, *REGISTER_FUNCTION_CODES)
MAX_READ_REGISTERS = 125  # Modbus spec limit for FC3/FC4 (a 256-byte RTU ADU)
MAX_READ_BITS = 2000  # Modbus spec limit for FC1/FC2 (250 data bytes)


def data_length(function_code: int, count: int) -> int:
    """Data bytes of a read response: 2 per register, or the bits packed eight to a byte (FC1/FC2)."""
    return (count + 7) >> 3 if function_code in BIT_FUNCTION_CODES else 2 * count

EXCEPTION_NAMES: dict[int, str] = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target failed to respond",
}


def rtu_read_request(unit: int, function_code: int, address: int, count: int) -> bytes:
    return with_crc(struct.pack(">BBHH", unit, function_code, address, count))


def rtu_read_response(unit: int, function_code: int, data: bytes) -> bytes:
    return with_crc(struct.pack(">BBB", unit, function_code, len(data)) + data)


def rtu_exception(unit: int, function_code: int, code: int) -> bytes:
    return with_crc(struct.pack(">BBB", unit, function_code | 0x80, code))


def rtu_response_length(count: int, function_code: int = 3) -> int:
    return 5 + data_length(function_code, count)


RTU_REQUEST_LENGTH = 8


def mbap(tid: int, unit: int, pdu: bytes) -> bytes:
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


class Verdict(Enum):
    INCOMPLETE = "incomplete"  # wait for more bytes
    OK = "ok"  # a well-formed response to this request (data or exception)
    STALE = "stale"  # a well-formed frame for an earlier transaction: ignore it
    CORRUPT = "corrupt"  # CRC, length, framing or echo wrong: count it and fail the transaction


@dataclass(frozen=True, slots=True)
class FrameCheck:
    verdict: Verdict
    reason: str = ""
    length: int = 0  # bytes the judged frame occupies (OK / STALE / CORRUPT with a known length)


_INCOMPLETE = FrameCheck(Verdict.INCOMPLETE)


def check_rtu_response(buf: bytes, unit: int, function_code: int, count: int) -> FrameCheck:
    """Judge the bytes received so far for a read of ``count`` registers (or bits) from ``unit``.

    RTU has no length field in the header, so the expected length comes from the request: a data
    response is ``5 + 2*count`` bytes (``5 + (count + 7) // 8`` for coils / inputs), an exception
    5 bytes. Anything else, once that many bytes are in, is corrupt (bad CRC, wrong byte count,
    wrong function code).
    """
    n = len(buf)
    if n < 2:
        return _INCOMPLETE
    fc = buf[1]
    if fc == function_code | 0x80:
        if n < 5:
            return _INCOMPLETE
        frame = buf[:5]
        if not crc_ok(frame):
            return FrameCheck(Verdict.CORRUPT, "bad CRC on exception frame", 5)
        if buf[0] != unit:
            return FrameCheck(Verdict.STALE, f"exception from unit {buf[0]}", 5)
        return FrameCheck(Verdict.OK, "", 5)
    nbytes = 2 * count if function_code > 2 else (count + 7) >> 3  # data_length, inlined: once per frame
    expected = 5 + nbytes
    if fc != function_code:
        if n < 5:
            return _INCOMPLETE
        return FrameCheck(Verdict.CORRUPT, f"unexpected function code {fc:#04x}", n)
    if n < 3:
        return _INCOMPLETE
    byte_count = buf[2]
    if byte_count != nbytes:
        # Either corruption or an answer to another request. Only a CRC-valid frame of its own
        # length from another unit is "another transaction"; everything else is damage.
        own_length = 5 + byte_count
        if n >= own_length and buf[0] != unit and crc_ok(buf[:own_length]):
            return FrameCheck(Verdict.STALE, f"frame from unit {buf[0]}", own_length)
        if n < expected:
            return _INCOMPLETE
        return FrameCheck(Verdict.CORRUPT, f"byte count {byte_count}, expected {nbytes}", expected)
    if n < expected:
        return _INCOMPLETE
    frame = buf[:expected]
    if not crc_ok(frame):
        return FrameCheck(Verdict.CORRUPT, "bad CRC", expected)
    if buf[0] != unit:
        return FrameCheck(Verdict.STALE, f"frame from unit {buf[0]}", expected)
    return FrameCheck(Verdict.OK, "", expected)


_MBAP = struct.Struct(">HHHB")


def check_tcp_response(buf: bytes, tid: int, unit: int, function_code: int, count: int) -> FrameCheck:
    """Judge the bytes received so far on a TCP connection for transaction ``tid``.

    A bad protocol id or an impossible length means the byte stream itself is out of step; the
    caller must drop the connection after counting it (the next frame boundary is unknown).
    """
    n = len(buf)
    if n < 7:
        return _INCOMPLETE
    rtid, pid, length, runit = _MBAP.unpack_from(buf, 0)
    if pid != 0:
        return FrameCheck(Verdict.CORRUPT, f"protocol id {pid} (stream out of step)", n)
    if length < 2 or length > 254:
        return FrameCheck(Verdict.CORRUPT, f"MBAP length {length} (stream out of step)", n)
    total = 6 + length
    if n < total:
        return _INCOMPLETE
    if rtid != tid:
        return FrameCheck(Verdict.STALE, f"transaction {rtid}, expected {tid}", total)
    fc = buf[7]
    if fc == function_code | 0x80:
        if length != 3:
            return FrameCheck(Verdict.CORRUPT, f"exception frame of length {length}", total)
        return FrameCheck(Verdict.OK, "", total)
    if fc != function_code:
        return FrameCheck(Verdict.CORRUPT, f"unexpected function code {fc:#04x}", total)
    if runit != unit:
        return FrameCheck(Verdict.CORRUPT, f"unit {runit}, expected {unit}", total)
    byte_count = buf[8]
    nbytes = 2 * count if function_code > 2 else (count + 7) >> 3  # data_length, inlined: once per frame
    if byte_count != nbytes or length != 3 + byte_count:
        return FrameCheck(Verdict.CORRUPT, f"byte count {byte_count} / length {length}, expected {nbytes}", total)
    return FrameCheck(Verdict.OK, "", total)


# --------------------------------------------------------------------------- wire timing


def char_time_s(baudrate: int, bytesize: int = 8, parity: str = "N", stopbits: float = 1) -> float:
    """Seconds one character occupies on the wire: start bit + data + parity + stop bits."""
    bits = 1 + bytesize + (0 if parity.upper() == "N" else 1) + stopbits
    return bits / baudrate


def inter_frame_silence_s(baudrate: int, bytesize: int = 8, parity: str = "N", stopbits: float = 1) -> float:
    """t3.5: the silence that ends an RTU frame.

    Fixed at 1.75 ms above 19,200 baud (Modbus over serial line 2.5.1.1).
    """
    if baudrate > 19200:
        return 0.00175
    return 3.5 * char_time_s(baudrate, bytesize, parity, stopbits)


def rtu_transaction_wire_s(
    count: int, baudrate: int, bytesize: int = 8, parity: str = "N", stopbits: float = 1, function_code: int = 3
) -> float:
    """Least time one read of ``count`` registers (FC3/FC4) or bits (FC1/FC2) occupies a serial bus.

    Request and response characters plus the two silences that must precede each frame; this is the
    limit the RTU wire-efficiency benchmark compares the achieved transaction rate with.
    """
    char = char_time_s(baudrate, bytesize, parity, stopbits)
    silence = inter_frame_silence_s(baudrate, bytesize, parity, stopbits)
    return (RTU_REQUEST_LENGTH + rtu_response_length(count, function_code)) * char + 2 * silence
