"""Pure GB/T 26875.3-2011 bytes <-> records (user information transmission device <-> centre). No I/O.

The device (用户信息传输装置, "UITD") connects to us over TCP and sends frames; we confirm (3) or
deny (6) every one of them with the same serial number.

Frame (all multi-byte fields little-endian)::

    bytes  1-2   @@                 start (0x40 0x40)
           3-4   serial number      a confirm / deny echoes the frame's serial number
           5-6   version            major, user (minor)
           7-12  time               sec min hour day month year-2000 (binary, not BCD)
          13-18  source address     6 bytes
          19-24  destination addr.  6 bytes
          25-26  data length        application data unit length, <= 1024
          27     command            1 control (time sync), 2 send data, 3 confirm, 4 request,
                                    5 response, 6 deny
           n     application data   type flag (1), object count (1), objects
           1     checksum           sum of bytes 3..27 and the data, mod 256
           2     ##                 end (0x23 0x23)

Application data objects (type flag -> information body, then a 6-byte time tag where marked +t)::

     1 system state          4 +t  sys type, sys addr, status (2)
     2 component run state  40 +t sys type, sys addr, part type, part addr (4), status (2),
                                   description (31, GB18030, NUL padded)
     3 component analog      10 +t sys type, sys addr, part type, part addr (4), analog type,
                                   value (int16; engineering value = value x the type's resolution)
     4 operation record      4 +t  sys type, sys addr, operation flags, operator
     8 system time           8     sys type, sys addr, time (6)
    21 UITD run state        1 +t  status flags
    24 UITD operation        2 +t  operation flags, operator
    28 UITD time             6     time
    90 (control) sync the UITD's clock: one object, the time (6)

Status bits of a component (type 2): 0 normal (1) / test (0), 1 fire, 2 fault, 3 shield,
4 supervise, 5 started, 6 feedback, 7 delay, 8 power fault. The 10-byte analog layout is confirmed
by a second implementation (``BuildingComponentAnalog``, protocol 8.3.1.3: 1+1+1+4+1+2 bytes); the
per-type resolution (``ANALOG_TYPES``) follows dgiot's table and is still unverified against the
standard's text.

Corrupt frames raise ``FrameError`` (a ``DeviceProtocolError``); ``scan_frame`` is the stream-side
variant for a TCP byte stream that may hold garbage or half a frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from drivers.dlt645.codec import FrameError, Scan, Verdict

START = b"@@"
END = b"##"
HEADER_LENGTH = 27
TRAILER_LENGTH = 3
MAX_DATA_LENGTH = 1024
TEXT_LENGTH = 31
TEXT_ENCODING = "gb18030"

CONTROL, SEND_DATA, CONFIRM, REQUEST, RESPONSE, DENY = 1, 2, 3, 4, 5, 6

SYSTEM_STATE = 1
COMPONENT_STATE = 2
COMPONENT_ANALOG = 3
OPERATION_RECORD = 4
SYSTEM_TIME = 8
UITD_STATE = 21
UITD_OPERATION = 24
UITD_TIME = 28
SYNC_TIME = 90

COMPONENT_BITS: dict[int, str] = {
    1: "fire", 2: "fault", 3: "shield", 4: "supervise", 5: "started", 6: "feedback", 7: "delay", 8: "power_fault",
}
SYSTEM_BITS: dict[int, str] = {
    1: "fire", 2: "fault", 3: "shield", 4: "supervise", 5: "started", 6: "feedback", 7: "delay",
    8: "main_power_fault", 9: "backup_power_fault", 10: "bus_fault", 11: "manual", 12: "config_changed", 13: "reset",
}
UITD_BITS: dict[int, str] = {
    1: "fire", 2: "fault", 3: "main_power_fault", 4: "backup_power_fault", 5: "centre_line_fault",
    6: "monitor_line_fault",
}

# analog type -> (point name, unit, resolution per step)
ANALOG_TYPES: dict[int, tuple[str, str, float]] = {
    1: ("count", "", 1.0),
    2: ("level", "m", 0.01),
    3: ("temperature", "°C", 0.1),
    4: ("pressure", "MPa", 0.1),
    5: ("pressure", "kPa", 0.1),
    6: ("gas_concentration", "%", 0.1),  # %LEL
    7: ("duration", "s", 1.0),
    8: ("voltage", "V", 0.1),
    9: ("current", "A", 0.1),
    10: ("flow", "L/s", 0.1),
    11: ("air_volume", "m³/min", 0.1),
    12: ("air_speed", "m/s", 1.0),
}

# (information body bytes, time tag follows)
_BODY: dict[int, tuple[int, bool]] = {
    SYSTEM_STATE: (4, True),
    COMPONENT_STATE: (40, True),
    COMPONENT_ANALOG: (10, True),
    OPERATION_RECORD: (4, True),
    SYSTEM_TIME: (8, False),
    UITD_STATE: (1, True),
    UITD_OPERATION: (2, True),
    UITD_TIME: (6, False),
    SYNC_TIME: (6, False),
}


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def encode_time(when: datetime) -> bytes:
    if not 2000 <= when.year <= 2255:
        raise ValueError(f"year {when.year} does not fit the frame's year-2000 byte")
    return bytes([when.second, when.minute, when.hour, when.day, when.month, when.year - 2000])


def decode_time(raw: bytes) -> datetime | None:
    """The 6-byte time; ``None`` when the device sent an impossible one (zeros from an unset clock)."""
    second, minute, hour, day, month, year = raw[:6]
    try:
        return datetime(2000 + year, month, day, hour, minute, second)  # the device's local time (naive)
    except ValueError:
        return None


def encode_text(text: str) -> bytes:
    raw = text.encode(TEXT_ENCODING)
    if len(raw) > TEXT_LENGTH:
        raise ValueError(f"description {text!r} is {len(raw)} bytes in GB18030, at most {TEXT_LENGTH}")
    return raw.ljust(TEXT_LENGTH, b"\x00")


def decode_text(raw: bytes) -> str:
    """GB18030 text up to the first NUL; undecodable bytes become U+FFFD rather than losing the record."""
    return raw.split(b"\x00", 1)[0].decode(TEXT_ENCODING, errors="replace").strip()


def status_names(status: int, bits: dict[int, str]) -> list[str]:
    return [name for bit, name in bits.items() if status >> bit & 1]


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class SystemState:
    system_type: int
    system_address: int
    status: int
    time: datetime | None


@dataclass(frozen=True, slots=True)
class ComponentState:
    system_type: int
    system_address: int
    part_type: int
    part_address: int
    status: int
    description: str
    time: datetime | None

    @property
    def states(self) -> list[str]:
        return status_names(self.status, COMPONENT_BITS)

    @property
    def address_text(self) -> str:
        """How staff see the component: system address - loop - point, e.g. ``1-02-017``."""
        loop, point = divmod(self.part_address, 1000)
        return f"{self.system_address}-{loop:02d}-{point:03d}"


@dataclass(frozen=True, slots=True)
class ComponentAnalog:
    system_type: int
    system_address: int
    part_type: int
    part_address: int
    analog_type: int
    raw: int
    time: datetime | None

    @property
    def value(self) -> float:
        return self.raw * ANALOG_TYPES.get(self.analog_type, ("", "", 1.0))[2]

    @property
    def unit(self) -> str:
        return ANALOG_TYPES.get(self.analog_type, ("", "", 1.0))[1]


@dataclass(frozen=True, slots=True)
class OperationRecord:
    system_type: int
    system_address: int
    flags: int
    operator: int
    time: datetime | None


@dataclass(frozen=True, slots=True)
class SystemTime:
    system_type: int
    system_address: int
    time: datetime | None


@dataclass(frozen=True, slots=True)
class UitdState:
    status: int
    time: datetime | None


@dataclass(frozen=True, slots=True)
class UitdOperation:
    flags: int
    operator: int
    time: datetime | None


@dataclass(frozen=True, slots=True)
class UitdTime:
    time: datetime | None


@dataclass(frozen=True, slots=True)
class RawObject:
    """A data unit of a type flag this codec does not decode (kept, confirmed, never guessed at).

    ``data`` is everything after the type flag (object count and objects), exactly as sent.
    """

    type_flag: int
    data: bytes


InfoObject = (
    SystemState | ComponentState | ComponentAnalog | OperationRecord | SystemTime | UitdState | UitdOperation
    | UitdTime | RawObject
)


@dataclass(frozen=True, slots=True)
class Frame:
    serial: int
    command: int
    source: int
    destination: int
    time: datetime | None
    version: tuple[int, int] = (1, 1)
    data: bytes = b""

    @property
    def type_flag(self) -> int | None:
        return self.data[0] if self.data else None


def encode_frame(serial: int, command: int, source: int, destination: int, data: bytes = b"", *,
                 when: datetime | None = None, version: tuple[int, int] = (1, 1)) -> bytes:
    if len(data) > MAX_DATA_LENGTH:
        raise ValueError(f"application data of {len(data)} bytes, at most {MAX_DATA_LENGTH}")
    body = (
        (serial & 0xFFFF).to_bytes(2, "little") + bytes(version)
        + (encode_time(when) if when is not None else bytes(6))
        + source.to_bytes(6, "little") + destination.to_bytes(6, "little")
        + len(data).to_bytes(2, "little") + bytes([command]) + data
    )
    return START + body + bytes([checksum(body)]) + END


def scan_frame(buf: bytes) -> Scan:
    """Find the first frame in a TCP byte stream. Garbage before ``@@`` is counted and skipped."""
    start = buf.find(START)
    if start < 0:
        keep = 1 if buf.endswith(b"@") else 0  # half a start marker stays for the next read
        return Scan(Verdict.NOTHING, len(buf) - keep, len(buf) - keep)
    n = len(buf) - start
    if n < HEADER_LENGTH:
        return Scan(Verdict.NEED_MORE, start, start)
    length = int.from_bytes(buf[start + 24 : start + 26], "little")
    if length > MAX_DATA_LENGTH:
        return Scan(Verdict.CORRUPT, start, start, 2, reason="length")  # drop the @@ and resynchronise
    total = HEADER_LENGTH + length + TRAILER_LENGTH
    if n < total:
        return Scan(Verdict.NEED_MORE, start, start)
    raw = buf[start : start + total]
    if raw[-2:] != END:
        return Scan(Verdict.CORRUPT, start, start, total, reason="end")
    if checksum(raw[2:-3]) != raw[-3]:
        return Scan(Verdict.CORRUPT, start, start, total, reason="checksum")
    frame = Frame(
        serial=int.from_bytes(raw[2:4], "little"),
        command=raw[26],
        source=int.from_bytes(raw[12:18], "little"),
        destination=int.from_bytes(raw[18:24], "little"),
        time=decode_time(raw[6:12]),
        version=(raw[4], raw[5]),
        data=bytes(raw[27 : 27 + length]),
    )
    return Scan(Verdict.OK, start, start, total, frame)


def decode_frame(raw: bytes) -> Frame:
    """Exactly one frame; raises ``FrameError``."""
    scan = scan_frame(raw)
    if scan.verdict is Verdict.NEED_MORE:
        raise FrameError("truncated", f"truncated frame: {len(raw)} bytes")
    if scan.verdict is Verdict.CORRUPT:
        raise FrameError(scan.reason, f"corrupt frame ({scan.reason}): {raw[:64].hex(' ')}")
    if scan.verdict is Verdict.NOTHING or scan.skipped:
        raise FrameError("garbage", f"no @@ at the start: {raw[:64].hex(' ')}")
    if scan.length != len(raw):
        raise FrameError("length", f"{len(raw) - scan.length} bytes after the frame")
    frame: Frame = scan.frame  # Scan (shared with DL/T 645) carries any protocol's frame
    return frame


# --------------------------------------------------------------------------- application data


def _u32(raw: bytes) -> int:
    return int.from_bytes(raw, "little")


def decode_objects(data: bytes) -> tuple[int, list[InfoObject]]:
    """(type flag, objects) of an application data unit; raises ``FrameError`` when the count does not fit."""
    if len(data) == 1:
        return data[0], []  # a bare type flag, as in the handshake example of devices.md 7 (a keep-alive)
    if len(data) < 2:
        raise FrameError("length", "application data without a type flag")
    flag, count = data[0], data[1]
    layout = _BODY.get(flag)
    if layout is None:
        return flag, [RawObject(flag, data[1:])]  # count and objects, as sent
    size, tagged = layout
    step = size + (6 if tagged else 0)
    if len(data) - 2 != count * step:
        raise FrameError("length", f"type {flag}: {count} objects of {step} bytes need {count * step}, got {len(data) - 2}")
    out: list[InfoObject] = []
    for k in range(count):
        body = data[2 + k * step : 2 + (k + 1) * step]
        tag = decode_time(body[size:]) if tagged else None
        out.append(_decode_object(flag, body[:size], tag))
    return flag, out


def _decode_object(flag: int, b: bytes, tag: datetime | None) -> InfoObject:
    if flag == SYSTEM_STATE:
        return SystemState(b[0], b[1], int.from_bytes(b[2:4], "little"), tag)
    if flag == COMPONENT_STATE:
        return ComponentState(b[0], b[1], b[2], _u32(b[3:7]), int.from_bytes(b[7:9], "little"), decode_text(b[9:40]), tag)
    if flag == COMPONENT_ANALOG:
        return ComponentAnalog(b[0], b[1], b[2], _u32(b[3:7]), b[7], int.from_bytes(b[8:10], "little", signed=True), tag)
    if flag == OPERATION_RECORD:
        return OperationRecord(b[0], b[1], b[2], b[3], tag)
    if flag == SYSTEM_TIME:
        return SystemTime(b[0], b[1], decode_time(b[2:8]))
    if flag == UITD_STATE:
        return UitdState(b[0], tag)
    if flag == UITD_OPERATION:
        return UitdOperation(b[0], b[1], tag)
    return UitdTime(decode_time(b))  # UITD_TIME and SYNC_TIME


def _tag(when: datetime | None) -> bytes:
    return encode_time(when) if when is not None else bytes(6)


def encode_object(obj: InfoObject) -> tuple[int, bytes]:
    """(type flag, body + time tag) for one object (the simulator's side of ``decode_objects``)."""
    if isinstance(obj, SystemState):
        return SYSTEM_STATE, bytes([obj.system_type, obj.system_address]) + obj.status.to_bytes(2, "little") + _tag(obj.time)
    if isinstance(obj, ComponentState):
        return COMPONENT_STATE, (
            bytes([obj.system_type, obj.system_address, obj.part_type]) + obj.part_address.to_bytes(4, "little")
            + obj.status.to_bytes(2, "little") + encode_text(obj.description) + _tag(obj.time)
        )
    if isinstance(obj, ComponentAnalog):
        return COMPONENT_ANALOG, (
            bytes([obj.system_type, obj.system_address, obj.part_type]) + obj.part_address.to_bytes(4, "little")
            + bytes([obj.analog_type]) + obj.raw.to_bytes(2, "little", signed=True) + _tag(obj.time)
        )
    if isinstance(obj, OperationRecord):
        return OPERATION_RECORD, bytes([obj.system_type, obj.system_address, obj.flags, obj.operator]) + _tag(obj.time)
    if isinstance(obj, SystemTime):
        return SYSTEM_TIME, bytes([obj.system_type, obj.system_address]) + _tag(obj.time)
    if isinstance(obj, UitdState):
        return UITD_STATE, bytes([obj.status]) + _tag(obj.time)
    if isinstance(obj, UitdOperation):
        return UITD_OPERATION, bytes([obj.flags, obj.operator]) + _tag(obj.time)
    if isinstance(obj, UitdTime):
        return UITD_TIME, _tag(obj.time)
    return obj.type_flag, obj.data


def encode_objects(objects: list[InfoObject]) -> bytes:
    """One application data unit; every object must share one type flag (at most 255 of them)."""
    if len(objects) == 1 and isinstance(objects[0], RawObject):
        return bytes([objects[0].type_flag]) + objects[0].data
    if not objects or len(objects) > 255:
        raise ValueError(f"{len(objects)} objects: one to 255 per data unit")
    encoded = [encode_object(o) for o in objects]
    flags = {flag for flag, _ in encoded}
    if len(flags) != 1:
        raise ValueError(f"one type flag per data unit, got {sorted(flags)}")
    return bytes([encoded[0][0], len(objects)]) + b"".join(body for _, body in encoded)


def confirm(frame: Frame, *, source: int | None = None, when: datetime | None = None) -> bytes:
    """Our confirm (3) of ``frame``: same serial number, addresses swapped, no data."""
    return encode_frame(frame.serial, CONFIRM, frame.destination if source is None else source, frame.source,
                        when=when, version=frame.version)


def deny(frame: Frame, *, source: int | None = None, when: datetime | None = None) -> bytes:
    return encode_frame(frame.serial, DENY, frame.destination if source is None else source, frame.source,
                        when=when, version=frame.version)


def time_sync(serial: int, source: int, destination: int, when: datetime) -> bytes:
    """Control (1) with type flag 90: set the device's clock to ``when``."""
    return encode_frame(serial, CONTROL, source, destination, bytes([SYNC_TIME, 1]) + encode_time(when), when=when)
