"""One DL/T 645 meter: read every data item of its profile, decode, and account for firmware gaps.

``MeterPoller`` has the shape the Modbus lanes schedule (``drivers.modbus.scheduler.PollLane``):
``device_id``, ``period``, ``stats``, ``phase`` / ``next_due`` and ``poll(link, ts, mono_now, retries=)``.
A poll is atomic, as for Modbus: every DI is read (each up to ``retries`` more times on a transient
error) and only then are the readings reported, all stamped with the poll's one timestamp; if any
required DI still fails the poll raises and reports nothing.

Each DI is one transaction. A reply must account for the request (same meter address, read
function, same DI: ``codec.check_read_reply``); one that does not is a protocol error, counted
like a corrupt frame. A reply with the follow-up bit set is continued with 0x12 + SEQ until the
meter says it is done. An abnormal reply "no data requested" to an ``optional`` point drops the
point for the rest of the run with a ``dlt645.point_unsupported`` event; any other abnormal
reply is a ``DeviceExceptionCode`` (the error byte is the code).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from drivers.dlt645 import codec
from drivers.dlt645.codec import AbnormalReply, FrameError
from drivers.dlt645.profile import Dlt645Profile, MeterPoint
from drivers.modbus.device import DeviceStats, FaultBookkeeping, PollResult
from edge.availability import AvailabilityReporter
from edge.config.device_options import Dlt645DeviceOptions, parse_options
from edge.config.devices import DeviceConfig
from edge.errors import DeviceError, DeviceExceptionCode, DeviceProtocolError
from edge.messages import MessageFields, say
from edge.records import Event, Quality, Reading, Severity
from edge.units import convert, unit_name

MAX_FOLLOW_UPS = 16


class Line(Protocol):
    name: str

    async def transact(self, device_id: str, request: bytes, *, timeout: float, detail: str,
                       expect_reply: bool = True) -> object: ...


class _Step:
    __slots__ = ("a", "fmt", "name", "point", "unit")

    def __init__(self, name: str, point: MeterPoint) -> None:
        self.name = name
        self.point = point
        self.fmt = point.value_format
        self.unit = unit_name(point.unit)
        factor = convert(1.0, point.device_unit, self.unit) if point.device_unit else 1.0
        self.a = point.scale * factor


class MeterPoller(FaultBookkeeping):
    """Reads one DL/T 645 meter. Scheduling state lives here too, owned by the lane."""

    protocol = "dlt645"

    def __init__(self, device: DeviceConfig, profile: Dlt645Profile) -> None:
        self.device = device
        self.profile = profile
        self.device_id = device.id
        self.address = parse_options(Dlt645DeviceOptions, device.id, device.options).address.rjust(12, "0")
        self.version = profile.version
        self.period = device.poll_interval_s
        self.timeout = device.timeout_s
        self.retries = device.retries
        self.stats = DeviceStats()
        self._steps = [_Step(name, point) for name, point in profile.points.items()]
        self._dropped: set[str] = set()
        self.next_due = 0.0
        self.phase = 0.0
        self.availability = AvailabilityReporter(self.device_id)  # what to report as DeviceStatus
        self.faults: list[DeviceError] = []

    async def poll(self, link: Line, ts: datetime, mono_now: float, *, retries: int | None = None) -> PollResult:
        attempts = 1 + (self.retries if retries is None else retries)
        readings: list[Reading] = []
        events: list[Event] = []
        requests = 0
        for step in self._steps:
            if step.name in self._dropped:
                continue
            try:
                payload, n = await self._read(link, step, attempts)
                requests += n
            except DeviceExceptionCode as exc:
                requests += 1
                if exc.code & codec.NO_DATA and step.point.optional:
                    self._dropped.add(step.name)
                    events.append(self._event(
                        "dlt645.point_unsupported", ts, Severity.WARNING,
                        say("device.point_unsupported", device=self.device_id, point=step.name),
                        {"point": step.name, "di": f"{step.point.di:08X}", "error": exc.code},
                    ))
                    continue
                raise
            try:
                value = step.fmt.decode(payload) * step.a
            except FrameError as exc:
                self.stats.corrupt_frames += 1
                error = exc.for_device(self.device_id, f"DI {step.point.di:08X}")
                self.faults.append(error)
                raise error from None
            point = step.point
            good = (point.valid_min is None or value >= point.valid_min) and (
                point.valid_max is None or value <= point.valid_max)
            readings.append(Reading(self.device_id, step.name, value, step.unit, ts,
                                    Quality.GOOD if good else Quality.BAD))
        self.stats.requests += requests
        return PollResult(readings, events, requests)

    async def _read(self, link: Line, step: _Step, attempts: int) -> tuple[bytes, int]:
        last: DeviceError | None = None
        di = step.point.di
        detail = f"DI {di:08X}" if self.version == 2007 else f"DI {di:04X}"
        for attempt in range(attempts):
            try:
                return await self._read_once(link, di, detail), attempt + 1
            except DeviceExceptionCode as exc:
                self.count_exception(exc)
                if not (exc.code & codec.NO_DATA and step.point.optional):
                    self.faults.append(exc)
                raise  # the meter answered: asking again gets the same answer
            except DeviceError as exc:
                last = exc
                self._count_error(exc)
                if isinstance(exc, DeviceProtocolError):
                    self.faults.append(exc)
                if attempt + 1 < attempts:
                    self.stats.retries += 1
        assert last is not None
        raise last

    async def _read_once(self, link: Line, di: int, detail: str) -> bytes:
        request = codec.read_request(self.address, di, version=self.version)
        payload = b""
        follow_up = False
        for _ in range(MAX_FOLLOW_UPS):
            frame = await link.transact(self.device_id, request, timeout=self.timeout, detail=detail)
            assert isinstance(frame, codec.Frame)
            try:
                reply = codec.check_read_reply(frame, self.address, di, version=self.version, follow_up=follow_up)
            except FrameError as exc:
                raise exc.for_device(self.device_id, detail) from None
            except AbnormalReply as exc:
                raise DeviceExceptionCode(self.device_id, exc.error, detail=f"{detail}: {exc}") from None
            payload += reply.payload
            if not reply.more:
                return payload
            follow_up = True
            seq = (reply.seq or 0) + 1
            request = codec.read_follow_up_request(self.address, di, seq, version=self.version)
        raise FrameError("length", f"more than {MAX_FOLLOW_UPS} follow-up frames", device_id=self.device_id,
                         detail=detail)

    # ------------------------------------------------------------------ bookkeeping (as the Modbus poller)


    def _event(self, code: str, ts: datetime, severity: Severity, text: MessageFields,
               data: dict[str, object]) -> Event:
        return Event(code=code, ts=ts, device_id=self.device_id, severity=severity,
                     data={"bus": self.device.bus, **data}, **text)
