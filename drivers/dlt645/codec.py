"""Pure DL/T 645 bytes <-> values: frames, the +0x33 offset, BCD values, checksums. No I/O here.

Frame (DL/T 645-2007 4.1; DL/T 645-1997 frames the same way)::

    [FE FE FE FE] 68 [A0 A1 A2 A3 A4 A5] 68 [C] [L] [DATA ........] [CS] 16
     wake-up       1b  address, 6 bytes  1b  1b  1b  L bytes, each    1b  1b
     (optional)        BCD, low first            +0x33 on the wire

    CS = sum of the bytes from the first 68 to the last DATA byte, mod 256

    The address as printed on the meter's label, "665544332211", travels as 11 22 33 44 55 66.
    AA AA AA AA AA AA is the wildcard (only a lone meter on the line answers it: read address),
    99 99 99 99 99 99 the broadcast address (time sync; nobody answers).

Control byte C::

    bit 7  direction      0 master -> meter, 1 meter -> master
    bit 6  abnormal       1: DATA is one error byte (2007: bit 1 no data requested, bit 2 unauthorised)
    bit 5  follow-up      1: more frames follow (read them with 0x12 + DI + SEQ)
    bit 4..0  function

    2007  0x11 read data   DATA = DI0 DI1 DI2 DI3        reply 0x91 (0xB1 more follows, 0xD1 abnormal)
                           reply DATA = DI0..DI3 value...
          0x12 read follow-up  DATA = DI0..DI3 SEQ      reply 0x92 / 0xB2, DATA = DI0..DI3 value... SEQ
          0x13 read address (to AA..AA)                 reply 0x93, DATA = A0..A5
          0x08 broadcast time sync DATA = ss mm hh DD MM YY (BCD), no reply
    1997  0x01 read data   DATA = DI0 DI1                reply 0x81 (0xA1 more follows, 0xC1 abnormal)

Values are BCD, low byte first, with the decimal point fixed by the data item's format
("XXXXXX.XX" is 4 bytes with 2 decimals). A signed format keeps the sign in the top bit of the
most significant (last) byte, so "XXX.XXX" with a sign spans -799.999 .. 799.999.

Failure modes raise ``FrameError`` (a ``DeviceProtocolError``) whose ``reason`` says what was wrong
(``checksum``, ``length``, ``end``, ``truncated``, ``bcd``, ``mismatch``) so the line can count it;
``scan`` is the stream-side variant that returns a verdict instead, for a byte stream that may hold
wake-up bytes, garbage or a partial frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, NamedTuple

from edge.errors import DeviceProtocolError

START = 0x68
END = 0x16
WAKE_UP = b"\xfe\xfe\xfe\xfe"
OFFSET = 0x33
WILDCARD_ADDRESS = "AAAAAAAAAAAA"
BROADCAST_ADDRESS = "999999999999"
HEADER_LENGTH = 10  # 68 A0..A5 68 C L

# 2007 control codes
READ_DATA = 0x11
READ_FOLLOW_UP = 0x12
READ_ADDRESS = 0x13
TIME_SYNC = 0x08
# 1997 control codes
READ_DATA_1997 = 0x01
READ_FOLLOW_UP_1997 = 0x02

DIRECTION_BIT = 0x80
ABNORMAL_BIT = 0x40
FOLLOW_UP_BIT = 0x20

ERROR_BITS_2007: dict[int, str] = {
    0x01: "other error",
    0x02: "no data requested",
    0x04: "password error / unauthorised",
    0x08: "baud rate cannot be changed",
    0x10: "annual time zones exceeded",
    0x20: "daily time periods exceeded",
    0x40: "tariffs exceeded",
}
NO_DATA = 0x02


class FrameError(DeviceProtocolError):
    """A frame that cannot be trusted. ``reason`` is a short key the line counts by."""

    def __init__(self, reason: str, message: str, *, device_id: str = "-", detail: str | None = None) -> None:
        super().__init__(device_id, message, detail=detail)
        self.reason = reason
        self.message = message

    def for_device(self, device_id: str, detail: str | None = None) -> FrameError:
        """The same error, naming the device and the request it answered."""
        return type(self)(self.reason, self.message, device_id=device_id, detail=detail or self.detail)


# --------------------------------------------------------------------------- BCD values


_FORMAT = re.compile(r"^(X+)(?:\.(X+))?$")


@dataclass(frozen=True, slots=True)
class ValueFormat:
    """A DL/T 645 data format such as ``XXXXXX.XX``: ``size`` bytes, ``decimals`` after the point."""

    size: int
    decimals: int
    signed: bool = False

    @classmethod
    def parse(cls, text: str, *, signed: bool = False) -> ValueFormat:
        match = _FORMAT.match(text.strip().upper())
        if not match:
            raise ValueError(f"format {text!r}: expected digits as X with an optional point, e.g. 'XXXXXX.XX'")
        digits = len(match.group(1)) + len(match.group(2) or "")
        # An odd count ("XXX" V in the 1997 tables) leaves the top nibble zero: 2 bytes for 3 digits.
        return cls((digits + 1) // 2, len(match.group(2) or ""), signed)

    def decode(self, raw: bytes) -> float:
        if len(raw) != self.size:
            raise FrameError("length", f"value of {len(raw)} bytes, format needs {self.size}")
        return float(bcd_to_int(raw, signed=self.signed) / 10**self.decimals)

    def encode(self, value: float) -> bytes:
        return int_to_bcd(round(value * 10**self.decimals), self.size, signed=self.signed)


def bcd_to_int(raw: bytes, *, signed: bool = False) -> int:
    """Low-byte-first BCD to an integer; with ``signed`` the top bit of the last byte is the sign."""
    if not raw:
        raise FrameError("bcd", "empty BCD value")
    data = bytearray(raw)
    negative = False
    if signed and data[-1] & 0x80:
        negative = True
        data[-1] &= 0x7F
    value = 0
    for byte in reversed(data):
        high, low = byte >> 4, byte & 0x0F
        if high > 9 or low > 9:
            raise FrameError("bcd", f"not a BCD value: {raw.hex(' ')}")
        value = value * 100 + high * 10 + low
    return -value if negative else value


def int_to_bcd(value: int, size: int, *, signed: bool = False) -> bytes:
    """An integer as ``size`` BCD bytes, low byte first; raises ``ValueError`` when it does not fit."""
    magnitude = abs(value)
    if value < 0 and not signed:
        raise ValueError(f"{value} is negative and the format is unsigned")
    limit = 10 ** (2 * size)
    if signed:
        limit = 8 * 10 ** (2 * size - 1)  # the sign bit takes the top digit's 8
    if magnitude >= limit:
        raise ValueError(f"{value} does not fit {size} BCD bytes{' with a sign' if signed else ''}")
    out = bytearray()
    for _ in range(size):
        magnitude, pair = divmod(magnitude, 100)
        out.append((pair // 10) << 4 | pair % 10)
    if signed and value < 0:
        out[-1] |= 0x80
    return bytes(out)


def add_offset(data: bytes) -> bytes:
    """Every DATA byte + 0x33 (mod 256), as sent on the wire."""
    return bytes((b + OFFSET) & 0xFF for b in data)


def remove_offset(data: bytes) -> bytes:
    return bytes((b - OFFSET) & 0xFF for b in data)


# --------------------------------------------------------------------------- addresses and DIs


def encode_address(address: str) -> bytes:
    """``"665544332211"`` (as on the label) -> ``11 22 33 44 55 66``; ``AA..`` and ``99..`` pass as they are."""
    text = address.strip().upper()
    if len(text) > 12 or not text:
        raise ValueError(f"meter address {address!r}: 1 to 12 digits")
    text = text.rjust(12, "0")
    if text != WILDCARD_ADDRESS and not text.isdigit():
        raise ValueError(f"meter address {address!r}: decimal digits only (or AAAAAAAAAAAA)")
    return bytes.fromhex(text)[::-1]


def decode_address(raw: bytes) -> str:
    return raw[::-1].hex().upper()


def di_bytes(di: int, version: int = 2007) -> bytes:
    """A data identifier as sent: DI0 first (4 bytes in 2007, 2 in 1997), before the +0x33."""
    return di.to_bytes(4 if version == 2007 else 2, "little")


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame; ``data`` is already reduced by 0x33."""

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
    def has_more(self) -> bool:
        return bool(self.control & FOLLOW_UP_BIT)

    @property
    def function(self) -> int:
        return self.control & 0x1F


def encode_frame(address: str, control: int, data: bytes = b"", *, preamble: bytes = WAKE_UP) -> bytes:
    """A complete frame; ``data`` is given without the offset (it is added here)."""
    if len(data) > 255:
        raise ValueError(f"DATA of {len(data)} bytes does not fit the length byte")
    body = bytes([START]) + encode_address(address) + bytes([START, control, len(data)]) + add_offset(data)
    return preamble + body + bytes([checksum(body), END])


def decode_frame(raw: bytes) -> Frame:
    """Exactly one frame (wake-up bytes allowed in front); raises ``FrameError``."""
    start = 0
    while start < len(raw) and raw[start] == 0xFE:
        start += 1
    scan = scan_frame(raw[start:])
    if scan.verdict is Verdict.NEED_MORE:
        raise FrameError("truncated", f"truncated frame: {len(raw) - start} bytes: {raw.hex(' ')}")
    if scan.verdict is Verdict.CORRUPT:
        raise FrameError(scan.reason, f"corrupt frame ({scan.reason}): {raw.hex(' ')}")
    if scan.skipped:
        raise FrameError("garbage", f"{scan.skipped} bytes before the frame: {raw.hex(' ')}")
    if start + scan.length != len(raw):
        raise FrameError("length", f"{len(raw) - start - scan.length} bytes after the frame: {raw.hex(' ')}")
    frame: Frame | None = scan.frame  # Scan carries either protocol's frame; this scanner's is a DL/T 645 one
    assert frame is not None
    return frame


class Verdict(Enum):
    OK = "ok"  # ``frame`` is complete and checked; ``length`` bytes (after ``skipped``) consumed
    NEED_MORE = "need_more"  # a frame may be starting; wait for more bytes
    CORRUPT = "corrupt"  # ``length`` bytes (after ``skipped``) were a frame with a bad checksum / end / length
    NOTHING = "nothing"  # no frame start at all; ``skipped`` bytes may be dropped


class Scan(NamedTuple):
    """What a stream scanner found at the front of a buffer.

    ``skipped`` bytes before the frame are wake-up bytes (0xFE, not counted as garbage) or garbage
    (``garbage`` of them); ``length`` is the frame's size after them.
    """

    verdict: Verdict
    skipped: int = 0
    garbage: int = 0
    length: int = 0
    frame: Any = None  # the protocol's decoded frame (DL/T 645 ``Frame``; CJ/T 188 reuses this type)
    reason: str = ""


def scan_frame(buf: bytes, *, max_data: int = 255) -> Scan:
    """Find the first frame in a byte stream (wake-up bytes and garbage before it are skipped).

    A 0x68 that is not followed by a second 0x68 seven bytes on is garbage, not a frame start; a
    length byte above ``max_data`` is too.
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
        if n - i < 8:
            return Scan(Verdict.NEED_MORE, i, garbage)
        if buf[i + 7] != START:
            garbage += 1
            i += 1
            continue
        if n - i < HEADER_LENGTH:
            return Scan(Verdict.NEED_MORE, i, garbage)
        length = buf[i + 9]
        if length > max_data:
            garbage += 1
            i += 1
            continue
        total = HEADER_LENGTH + length + 2
        if n - i < total:
            return Scan(Verdict.NEED_MORE, i, garbage)
        frame = buf[i : i + total]
        if frame[-1] != END:
            return Scan(Verdict.CORRUPT, i, garbage, total, reason="end")
        if checksum(frame[:-2]) != frame[-2]:
            return Scan(Verdict.CORRUPT, i, garbage, total, reason="checksum")
        decoded = Frame(decode_address(frame[1:7]), frame[8], remove_offset(frame[10 : 10 + length]))
        return Scan(Verdict.OK, i, garbage, total, decoded)
    return Scan(Verdict.NOTHING, n, garbage)


# --------------------------------------------------------------------------- requests (master side)


def read_request(address: str, di: int, *, version: int = 2007, preamble: bytes = WAKE_UP) -> bytes:
    control = READ_DATA if version == 2007 else READ_DATA_1997
    return encode_frame(address, control, di_bytes(di, version), preamble=preamble)


def read_follow_up_request(address: str, di: int, seq: int, *, version: int = 2007, preamble: bytes = WAKE_UP) -> bytes:
    """2007: DI + SEQ (1..255); 1997: DI only (the meter keeps its own place)."""
    if version == 2007:
        return encode_frame(address, READ_FOLLOW_UP, di_bytes(di) + bytes([seq & 0xFF]), preamble=preamble)
    return encode_frame(address, READ_FOLLOW_UP_1997, di_bytes(di, 1997), preamble=preamble)


def read_address_request(*, preamble: bytes = WAKE_UP) -> bytes:
    return encode_frame(WILDCARD_ADDRESS, READ_ADDRESS, b"", preamble=preamble)


def time_sync_request(when: datetime, *, preamble: bytes = WAKE_UP) -> bytes:
    """Broadcast time sync (2007 0x08): ss mm hh DD MM YY in BCD. No meter answers it."""
    fields = (when.second, when.minute, when.hour, when.day, when.month, when.year % 100)
    return encode_frame(BROADCAST_ADDRESS, TIME_SYNC, b"".join(int_to_bcd(f, 1) for f in fields), preamble=preamble)


# --------------------------------------------------------------------------- replies (meter side, and checking them)


def read_reply(address: str, di: int, payload: bytes, *, version: int = 2007, more: bool = False,
               seq: int | None = None, preamble: bytes = b"") -> bytes:
    """What a meter answers to a read (the simulator's side; tests build vectors with it)."""
    if version == 2007:
        control = (READ_DATA if seq is None else READ_FOLLOW_UP) | DIRECTION_BIT
    else:
        control = (READ_DATA_1997 if seq is None else READ_FOLLOW_UP_1997) | DIRECTION_BIT
    if more:
        control |= FOLLOW_UP_BIT
    tail = bytes([seq]) if seq is not None and version == 2007 else b""
    return encode_frame(address, control, di_bytes(di, version) + payload + tail, preamble=preamble)


def abnormal_reply(address: str, error: int, *, version: int = 2007, preamble: bytes = b"") -> bytes:
    control = (READ_DATA if version == 2007 else READ_DATA_1997) | DIRECTION_BIT | ABNORMAL_BIT
    return encode_frame(address, control, bytes([error]), preamble=preamble)


def address_reply(address: str, *, preamble: bytes = b"") -> bytes:
    return encode_frame(address, READ_ADDRESS | DIRECTION_BIT, encode_address(address), preamble=preamble)


def error_text(error: int) -> str:
    names = [name for bit, name in ERROR_BITS_2007.items() if error & bit]
    return ", ".join(names) or f"error byte {error:#04x}"


class ReadReply(NamedTuple):
    payload: bytes  # the value bytes, DI (and SEQ) removed
    more: bool  # the meter has follow-up frames
    seq: int | None  # the follow-up frame's sequence number (2007)


class AbnormalReply(Exception):
    """The meter answered a read with an error byte (kept in ``error``); not a corrupt frame."""

    def __init__(self, error: int) -> None:
        super().__init__(error_text(error))
        self.error = error


def check_read_reply(frame: Frame, address: str, di: int, *, version: int = 2007, follow_up: bool = False) -> ReadReply:
    """Accept ``frame`` only as the answer to *this* read: same meter, same function, same DI.

    Raises ``AbnormalReply`` for an error answer and ``FrameError("mismatch")`` for anything that
    does not account for the request (another meter's frame, an echo of the request, another DI).
    """
    if version == 2007:
        function = READ_FOLLOW_UP if follow_up else READ_DATA
    else:
        function = READ_FOLLOW_UP_1997 if follow_up else READ_DATA_1997
    if frame.address != encode_address(address)[::-1].hex().upper():
        raise FrameError("mismatch", f"reply from meter {frame.address}, asked {address}")
    if not frame.is_reply:
        raise FrameError("mismatch", f"a request (C={frame.control:#04x}), not a reply")
    if frame.function != function:
        raise FrameError("mismatch", f"reply C={frame.control:#04x} to a read C={function:#04x}")
    if frame.is_abnormal:
        if len(frame.data) != 1:
            raise FrameError("length", f"abnormal reply with {len(frame.data)} data bytes, expected 1")
        raise AbnormalReply(frame.data[0])
    size = 4 if version == 2007 else 2
    if len(frame.data) < size:
        raise FrameError("length", f"reply of {len(frame.data)} data bytes has no DI")
    got = int.from_bytes(frame.data[:size], "little")
    if got != di:
        raise FrameError("mismatch", f"reply for DI {got:0{2 * size}X}, asked {di:0{2 * size}X}")
    payload = frame.data[size:]
    seq = None
    if follow_up and version == 2007:
        if not payload:
            raise FrameError("length", "follow-up reply without SEQ")
        payload, seq = payload[:-1], payload[-1]
    return ReadReply(payload, frame.has_more, seq)


def check_address_reply(frame: Frame) -> str:
    """The address a lone meter gave in answer to a read-address request."""
    if frame.control != READ_ADDRESS | DIRECTION_BIT:
        raise FrameError("mismatch", f"reply C={frame.control:#04x} to read address (0x13)")
    if len(frame.data) != 6:
        raise FrameError("length", f"address reply with {len(frame.data)} data bytes, expected 6")
    given = decode_address(frame.data)
    if given != frame.address:
        raise FrameError("mismatch", f"address reply says {given} in DATA and {frame.address} in the header")
    return given

