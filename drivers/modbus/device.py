"""One Modbus device: its read plan, its decoding, and its firmware quirks.

``DevicePoller.poll(link, ts)`` reads every block of the plan over ``link`` and returns all of the
device's readings stamped with the one ``ts`` of this poll: a poll is atomic, so the points of one
poll always come from the same read cycle. If any block still fails after the device's retries,
the poll raises and *no* reading of that poll is reported (never a mix of this cycle's voltage
with the last cycle's current).

Adapting to firmware without configuration: when a merged block is refused with exception 0x02
(illegal data address), the block is read point by point within the same poll. A point that is
refused alone is tried at its profile ``alternates`` (the DTSU666 keeps energy at 0x401E or
0x101E depending on firmware); the working address is remembered and announced once as a
``modbus.address_fallback`` event. An ``optional`` point that no address serves is dropped with a
``modbus.point_unsupported`` event; a required one fails the poll. The plan is then rebuilt so
the next poll costs as few requests as the device really allows.

Coils and discrete inputs (FC1/FC2, ``type: bit``) are planned in their own blocks and decoded from
the packed bits (one shift and mask per point); a register-only profile never touches that path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from drivers.modbus.codec import (
    BIT_FUNCTION_CODES,
    BlockDecoder,
    Decoder,
    make_bit_block_decoder,
    make_block_decoder,
    make_decoder,
)
from drivers.modbus.planner import PlannedPoint, ReadBlock, plan_reads
from drivers.modbus.profile import PointSpec, Profile
from edge.availability import AvailabilityReporter
from edge.config.devices import DeviceConfig
from edge.errors import DeviceError, DeviceExceptionCode, DeviceProtocolError, DeviceTimeout, DeviceUnreachable
from edge.messages import MessageFields, say
from edge.records import Event, Quality, Reading, Severity
from edge.units import convert

ILLEGAL_DATA_ADDRESS = 0x02


class Link(Protocol):
    name: str

    async def read(self, device_id: str, unit: int, function_code: int, address: int, count: int,
                   timeout: float) -> bytes: ...


@dataclass(slots=True)
class _Point:
    name: str
    spec: PointSpec
    function_code: int
    decode: Decoder
    addresses: tuple[int, ...]  # primary first, then alternates
    byte_order: str = "big"
    word_order: str = "big"
    address_index: int = 0
    isolated: bool = False  # must be read on its own (a merged read around it was refused)
    dropped: bool = False
    announced: int | None = None  # the fallback address already announced (the event goes out once)

    @property
    def address(self) -> int:
        return self.addresses[self.address_index]


@dataclass(frozen=True, slots=True)
class _Step:
    """One point's decoding, compiled: ``a`` and ``b`` fold scale, offset and a fixed unit conversion."""

    name: str
    spec: PointSpec
    simple: bool
    emit: bool
    unit: str
    a: float
    b: float
    vmin: float | None
    vmax: float | None


@dataclass(slots=True)
class PollResult:
    readings: list[Reading]
    events: list[Event]
    requests: int


@dataclass(slots=True)
class DeviceStats:
    """Counters for the panel; all since start. ``lag_*`` are seconds behind schedule."""

    polls: int = 0
    ok: int = 0
    failed: int = 0
    timeouts: int = 0
    unreachable: int = 0
    corrupt_frames: int = 0
    exception_codes: int = 0
    skipped_cycles: int = 0
    requests: int = 0
    retries: int = 0
    consecutive_failures: int = 0
    online: bool | None = None
    last_error: str | None = None
    last_ok: datetime | None = None
    lag_max_s: float = 0.0
    last_lag_s: float = 0.0
    backoff_s: float = 0.0
    exception_by_code: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "polls": self.polls, "ok": self.ok, "failed": self.failed, "timeouts": self.timeouts,
            "unreachable": self.unreachable, "corrupt_frames": self.corrupt_frames,
            "exception_codes": self.exception_codes, "exception_by_code": dict(self.exception_by_code),
            "skipped_cycles": self.skipped_cycles, "requests": self.requests, "retries": self.retries,
            "consecutive_failures": self.consecutive_failures, "online": self.online,
            "last_error": self.last_error, "last_ok": self.last_ok.isoformat() if self.last_ok else None,
            "lag_max_s": round(self.lag_max_s, 4), "last_lag_s": round(self.last_lag_s, 4),
            "backoff_s": self.backoff_s,
        }


class FaultBookkeeping:
    """What every device poller counts and hands on: errors by kind, exception codes, faults to report.

    Shared by the Modbus, DL/T 645 and CJ/T 188 pollers (their sources read these the same way).
    """

    stats: DeviceStats
    faults: list[DeviceError]

    def _count_error(self, exc: DeviceError) -> None:
        if isinstance(exc, DeviceTimeout):
            self.stats.timeouts += 1
        elif isinstance(exc, DeviceUnreachable):
            self.stats.unreachable += 1
        elif isinstance(exc, DeviceProtocolError):
            self.stats.corrupt_frames += 1

    def count_exception(self, exc: DeviceExceptionCode) -> None:
        self.stats.exception_codes += 1
        self.stats.exception_by_code[exc.code] = self.stats.exception_by_code.get(exc.code, 0) + 1

    def drain_faults(self) -> list[DeviceError]:
        faults, self.faults = self.faults, []
        return faults


class DevicePoller(FaultBookkeeping):
    """Plan, read and decode one device. Scheduling state lives here too, owned by the lane."""

    def __init__(self, device: DeviceConfig, profile: Profile, *, max_gap: int, max_registers: int | None = None,
                 unit_id: int | None = None) -> None:
        self.device = device
        self.profile = profile
        self.device_id = device.id
        self.unit = unit_id if unit_id is not None else (device.unit_id if device.unit_id is not None
                                                          else profile.serial.unit_id)
        self.period = device.poll_interval_s
        self.timeout = device.timeout_s
        self.retries = device.retries
        self.max_gap = max_gap
        self.max_registers = min(max_registers or profile.max_registers_per_read, profile.max_registers_per_read)
        self.max_bits = profile.max_bits_per_read
        self.stats = DeviceStats()
        self._points: dict[str, _Point] = {}
        for name, spec in profile.points.items():
            fc, byte_order, word_order = profile.spec_order(spec)
            self._points[name] = _Point(
                name=name, spec=spec, function_code=fc, decode=make_decoder(spec.type, byte_order, word_order),
                addresses=(spec.address, *[a for a in spec.alternates if a != spec.address]),
                byte_order=byte_order, word_order=word_order,
            )
        self._order = list(profile.resolution_order)
        self._steps: list[_Step] = []
        self._compile()
        self._static: dict[str, tuple[float, float]] = {}  # name -> (raw, monotonic read time)
        self._plan_full: list[ReadBlock] = []
        self._plan_regular: list[ReadBlock] = []
        self._replan()
        # Scheduling state (owned by the lane's workers).
        self.next_due = 0.0
        self.phase = 0.0
        self.availability = AvailabilityReporter(self.device_id)  # what to report as DeviceStatus (edge.availability)
        self.faults: list[DeviceError] = []  # protocol faults of the last poll, drained by the source

    # ------------------------------------------------------------------ planning

    def _replan(self) -> None:
        def planned(names: list[str]) -> list[ReadBlock]:
            merged = [self._points[n] for n in names if not self._points[n].isolated]
            alone = [self._points[n] for n in names if self._points[n].isolated]
            blocks = plan_reads(
                (PlannedPoint(p.name, p.function_code, p.address, p.spec.registers) for p in merged),
                self.max_registers, self.max_gap, max_bits=self.max_bits,
            )
            for p in alone:
                blocks.extend(plan_reads([PlannedPoint(p.name, p.function_code, p.address, p.spec.registers)],
                                         self.max_registers, 0, max_bits=self.max_bits))
            return sorted(blocks, key=lambda b: (b.function_code, b.address))

        self._unpackers: dict[ReadBlock, BlockDecoder] = {}
        live = [n for n, p in self._points.items() if not p.dropped]
        self._refreshed = [(n, p.spec.refresh_s) for n in live if (p := self._points[n]).spec.refresh_s is not None]
        self._plan_full = planned(live)
        self._plan_regular = planned([n for n in live if self._points[n].spec.refresh_s is None])

    def _unpacker(self, block: ReadBlock) -> BlockDecoder:
        points = [(self._points[name], offset) for name, offset in block.points]
        if block.function_code in BIT_FUNCTION_CODES:
            unpack = self._unpackers[block] = make_bit_block_decoder([(p.name, offset) for p, offset in points])
            return unpack
        unpack = make_block_decoder([(p.name, offset * 2, p.spec.type, p.byte_order, p.word_order) for p, offset in points])
        self._unpackers[block] = unpack
        return unpack

    @property
    def plan(self) -> list[ReadBlock]:
        """The blocks one full poll reads (including configuration registers)."""
        return list(self._plan_full)

    def _blocks_for(self, mono_now: float) -> list[ReadBlock]:
        for name, refresh_s in self._refreshed:
            cached = self._static.get(name)
            if cached is None or mono_now - cached[1] >= refresh_s:
                return self._plan_full
        return self._plan_regular

    # ------------------------------------------------------------------ polling

    async def poll(self, link: Link, ts: datetime, mono_now: float, *, retries: int | None = None) -> PollResult:
        """Read every block (each up to ``retries`` extra times) and decode; raises ``DeviceError``."""
        attempts = 1 + (self.retries if retries is None else retries)
        raw: dict[str, float] = {}
        events: list[Event] = []
        requests = 0
        blocks = self._blocks_for(mono_now)
        replan = False
        for block in blocks:
            try:
                data, n = await self._read(link, block, attempts)
                requests += n
            except DeviceExceptionCode as exc:
                requests += 1
                if exc.code != ILLEGAL_DATA_ADDRESS:
                    raise
                got, n, evs = await self._read_points_alone(link, block, attempts, ts)
                requests += n
                events.extend(evs)
                raw.update(got)
                replan = True
                continue
            raw.update((self._unpackers.get(block) or self._unpacker(block))(data))
        if replan:
            self._replan()
        for name, _ in self._refreshed:
            if name in raw:
                self._static[name] = (raw[name], mono_now)
        for name, (value, _) in self._static.items():
            raw.setdefault(name, value)
        self.stats.requests += requests
        return PollResult(self._decode(raw, ts), events, requests)

    async def _read(self, link: Link, block: ReadBlock, attempts: int) -> tuple[bytes, int]:
        last: DeviceError | None = None
        for attempt in range(attempts):
            try:
                data = await link.read(self.device_id, self.unit, block.function_code, block.address, block.count,
                                       self.timeout)
                return data, attempt + 1
            except DeviceExceptionCode as exc:
                self.count_exception(exc)
                if exc.code != ILLEGAL_DATA_ADDRESS:  # 0x02 is handled (and reported) by the fallback logic
                    self.faults.append(exc)
                raise  # the device answered: retrying the same request gets the same answer
            except DeviceError as exc:
                last = exc
                self._count_error(exc)
                if isinstance(exc, DeviceProtocolError):
                    self.faults.append(exc)
                if attempt + 1 < attempts:
                    self.stats.retries += 1
        assert last is not None
        raise last

    async def _read_points_alone(
        self, link: Link, block: ReadBlock, attempts: int, ts: datetime
    ) -> tuple[dict[str, float], int, list[Event]]:
        """A merged read was refused with 0x02: read its points one by one, trying alternates."""
        got: dict[str, float] = {}
        events: list[Event] = []
        requests = 0
        for name, _ in block.points:
            point = self._points[name]
            point.isolated = len(block.points) > 1
            known = point.address_index  # a fallback learnt in an earlier poll
            tried = 0
            while True:
                try:
                    data, n = await self._read(
                        link, ReadBlock(point.function_code, point.address, point.spec.registers, ((name, 0),)), attempts
                    )
                    requests += n
                    got[name] = point.decode(data, 0)
                    if point.address_index and point.address_index != known:
                        # Newly found: try merging it with its neighbours there. A fallback already
                        # known whose merged read was refused again stays isolated for good.
                        point.isolated = False
                    if point.address_index and point.announced != point.address:
                        point.announced = point.address
                        events.append(self._event(
                            "modbus.address_fallback", ts, Severity.INFO,
                            say("modbus.address_fallback", device=self.device_id, point=name),
                            {"point": name, "address": point.address, "primary": point.addresses[0]},
                        ))
                    break
                except DeviceExceptionCode as exc:
                    requests += 1
                    if exc.code != ILLEGAL_DATA_ADDRESS:
                        raise
                    tried += 1
                    if tried < len(point.addresses):
                        point.address_index = (point.address_index + 1) % len(point.addresses)
                        continue
                    if not point.spec.optional:
                        raise
                    point.dropped = True
                    events.append(self._event(
                        "modbus.point_unsupported", ts, Severity.WARNING,
                        say("device.point_unsupported", device=self.device_id, point=name),
                        {"point": name, "addresses": list(point.addresses)},
                    ))
                    break
        return got, requests, events

    # ------------------------------------------------------------------ decoding

    def _compile(self) -> None:
        """Precompute each point's arithmetic, so the per-poll work is a multiply-add per plain point."""
        steps: list[_Step] = []
        for name in self._order:
            spec = self._points[name].spec
            simple = not (spec.offset_from or spec.decimals_from or spec.scale_by or spec.unit_from
                          or spec.valid_range_from)
            factor = 1.0
            if simple and (spec.device_unit or spec.unit) != spec.unit:
                factor = convert(1.0, spec.device_unit or spec.unit, spec.unit)
            steps.append(_Step(name, spec, simple, spec.emit, spec.unit, spec.scale * factor, spec.offset * factor,
                               spec.valid_min, spec.valid_max))
        self._steps = steps
        # The usual profile (every point a fixed multiply-add) decodes without the bookkeeping that
        # points referring to other points need.
        self._all_simple = all(step.simple for step in steps)
        self._simple_emits = [(s.name, s.unit, s.a, s.b, s.vmin, s.vmax) for s in steps if s.emit]

    def _decode(self, raw: dict[str, float], ts: datetime) -> list[Reading]:
        if self._all_simple:
            return self._decode_simple(raw, ts)
        values: dict[str, float] = {}
        units: dict[str, str] = {}
        out: list[Reading] = []
        device_id = self.device_id
        isfinite = math.isfinite
        for step in self._steps:
            name = step.name
            value = raw.get(name)
            if value is None:
                continue
            if step.simple:
                value = value * step.a + step.b
                values[name] = value
                units[name] = step.unit
                if step.emit:
                    if isfinite(value) and (step.vmin is None or value >= step.vmin) and (
                        step.vmax is None or value <= step.vmax
                    ):
                        out.append(Reading(device_id, name, value, step.unit, ts))
                    else:
                        out.append(Reading(device_id, name, value, step.unit, ts, Quality.BAD))
                continue
            spec = step.spec
            if spec.offset_from:
                value += raw.get(spec.offset_from, 0.0)
            value = value * spec.scale + spec.offset
            if spec.decimals_from:
                value /= 10 ** int(values.get(spec.decimals_from, 0))
            for ref in spec.scale_by:
                value *= values.get(ref, 1.0)
            unit = spec.unit
            source_unit = spec.device_unit or unit
            if spec.unit_from:
                code = int(values.get(spec.unit_from, -1))
                source_unit = spec.unit_codes.get(code, "")
                if not source_unit:
                    # An unknown unit code: the value cannot be trusted in any unit.
                    values[name] = value
                    units[name] = ""
                    if spec.emit:
                        out.append(Reading(device_id, name, value, unit, ts, Quality.BAD))
                    continue
            if source_unit != unit:
                value = convert(value, source_unit, unit)
            values[name] = value
            units[name] = unit
            if spec.emit:
                out.append(Reading(device_id, name, value, unit, ts, self._quality(spec, value, values, units)))
        return out

    def _decode_simple(self, raw: dict[str, float], ts: datetime) -> list[Reading]:
        out: list[Reading] = []
        append = out.append
        device_id = self.device_id
        isfinite = math.isfinite
        for name, unit, a, b, vmin, vmax in self._simple_emits:
            value = raw.get(name)
            if value is None:
                continue
            value = value * a + b
            if isfinite(value) and (vmin is None or value >= vmin) and (vmax is None or value <= vmax):
                append(Reading(device_id, name, value, unit, ts))
            else:
                append(Reading(device_id, name, value, unit, ts, Quality.BAD))
        return out

    @staticmethod
    def _quality(spec: PointSpec, value: float, values: dict[str, float], units: dict[str, str]) -> Quality:
        if not math.isfinite(value):
            return Quality.BAD
        if spec.valid_min is not None and value < spec.valid_min:
            return Quality.BAD
        if spec.valid_max is not None and value > spec.valid_max:
            return Quality.BAD
        if spec.valid_range_from:
            lo_name, hi_name = spec.valid_range_from
            lo, hi = values.get(lo_name), values.get(hi_name)
            if lo is not None and hi is not None and hi > lo and units.get(lo_name) and units.get(hi_name):
                margin = (hi - lo) * spec.valid_margin
                if value < lo - margin or value > hi + margin:
                    return Quality.BAD
        return Quality.GOOD

    # ------------------------------------------------------------------ bookkeeping

    def _event(self, code: str, ts: datetime, severity: Severity, text: MessageFields,
               data: dict[str, object]) -> Event:
        return Event(code=code, ts=ts, device_id=self.device_id, severity=severity,
                     data={"bus": self.device.bus, **data}, **text)

