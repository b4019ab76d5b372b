"""One CJ/T 188 meter: one read-data (DI 0x901F) transaction per poll, decoded into readings and state events.

``MeterPoller`` has the shape the Modbus lanes schedule (see ``drivers.dlt645.device``). The reply
must account for the request: same meter type and address, read function, DI in the order asked,
and the SER byte we sent (a rolling sequence number, so a late answer to an earlier, timed-out
request is never taken for this one).

Status word -> readings ``valve`` (0 open, 1 closed, 2 abnormal) and ``battery_low`` (0 / 1), and
-> events ``cjt188.valve_abnormal`` / ``cjt188.battery_low`` with ``data.active`` when the state
changes (and on the first poll if it is already bad), which the rule engine turns into alarms.
"""

from __future__ import annotations

from datetime import datetime

from drivers.cjt188 import codec
from drivers.cjt188.profile import Cjt188Profile
from drivers.dlt645.codec import FrameError
from drivers.dlt645.device import Line
from drivers.modbus.device import DeviceStats, FaultBookkeeping, PollResult
from edge.availability import AvailabilityReporter
from edge.config.device_options import Cjt188DeviceOptions, parse_options
from edge.config.devices import DeviceConfig
from edge.errors import ConfigError, DeviceError, DeviceExceptionCode, DeviceProtocolError
from edge.messages import say
from edge.records import Event, Reading, Severity


class MeterPoller(FaultBookkeeping):
    """Reads one CJ/T 188 meter. Scheduling state lives here too, owned by the lane."""

    protocol = "cjt188"

    def __init__(self, device: DeviceConfig, profile: Cjt188Profile) -> None:
        options = parse_options(Cjt188DeviceOptions, device.id, device.options)
        self.device = device
        self.profile = profile
        self.device_id = device.id
        self.address = options.address.rjust(14, "0")
        meter_type = profile.meter_type if options.meter_type is None else options.meter_type
        if meter_type not in codec.KNOWN_TYPES:
            raise ConfigError(f"device {device.id}: options.meter_type {meter_type!r} is not a CJ/T 188 meter type")
        self.meter_type = meter_type
        self.bits = profile.status_bits.bits()
        self.period = device.poll_interval_s
        self.timeout = device.timeout_s
        self.retries = device.retries
        self.stats = DeviceStats()
        self.next_due = 0.0
        self.phase = 0.0
        self.availability = AvailabilityReporter(self.device_id)  # what to report as DeviceStatus
        self.faults: list[DeviceError] = []
        self._ser = 0
        self._states: dict[str, bool] = {}
        self.meter_clock: datetime | None = None

    async def poll(self, link: Line, ts: datetime, mono_now: float, *, retries: int | None = None) -> PollResult:
        attempts = 1 + (self.retries if retries is None else retries)
        last: DeviceError | None = None
        for attempt in range(attempts):
            try:
                data = await self._read_once(link)
            except DeviceExceptionCode as exc:
                self.count_exception(exc)
                self.faults.append(exc)
                raise
            except DeviceError as exc:
                last = exc
                self._count_error(exc)
                if isinstance(exc, DeviceProtocolError):
                    self.faults.append(exc)
                if attempt + 1 < attempts:
                    self.stats.retries += 1
                continue
            self.stats.requests += attempt + 1
            return PollResult(*self._decode(data, ts), attempt + 1)
        assert last is not None
        raise last

    async def _read_once(self, link: Line) -> codec.MeterData:
        self._ser = (self._ser + 1) & 0xFF
        ser, order = self._ser, self.profile.di_order
        detail = f"DI 901F SER {ser}"
        request = codec.read_data_request(self.meter_type, self.address, ser, order=order)
        frame = await link.transact(self.device_id, request, timeout=self.timeout, detail=detail)
        assert isinstance(frame, codec.Frame)
        try:
            payload = codec.check_read_reply(frame, self.meter_type, self.address, ser, order=order)
            return codec.decode_meter_data(self.meter_type, payload)
        except FrameError as exc:
            raise exc.for_device(self.device_id, detail) from None
        except codec.AbnormalReply as exc:
            raise DeviceExceptionCode(self.device_id, exc.status, detail=f"{detail}: {exc}") from None

    def _decode(self, data: codec.MeterData, ts: datetime) -> tuple[list[Reading], list[Event]]:
        readings = [Reading(self.device_id, name, *data.values[name], ts) for name in self.profile.points]
        events: list[Event] = []
        self.meter_clock = data.clock
        if self.profile.status_points:
            valve = self.bits.valve(data.status)
            low = self.bits.low_battery(data.status)
            readings.append(Reading(self.device_id, "valve", float(valve), "", ts))
            readings.append(Reading(self.device_id, "battery_low", float(low), "", ts))
            events.extend(self._state("valve_abnormal", valve == 2, ts, data.status,
                                      "meter.valve_abnormal", "meter.valve_ok"))
            events.extend(self._state("battery_low", low, ts, data.status, "meter.battery_low", "meter.battery_ok"))
        return readings, events

    def _state(self, name: str, active: bool, ts: datetime, status: int, on: str, off: str) -> list[Event]:
        previous = self._states.get(name)
        self._states[name] = active
        if previous == active or (previous is None and not active):
            return []
        return [Event(code=f"cjt188.{name}", ts=ts, device_id=self.device_id,
                      severity=Severity.WARNING if active else Severity.INFO,
                      data={"bus": self.device.bus, "active": active, "status": status, "address": self.address},
                      **say(on if active else off, device=self.device_id))]

