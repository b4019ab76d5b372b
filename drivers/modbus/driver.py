"""The Modbus source: one per bus (``modbus_tcp`` or ``modbus_rtu``), implementing ``edge.sources.Source``.

What it delivers to the sink:

* ``sink.readings``: every point of a successful poll, stamped with the poll's one timestamp, in
  the profile's canonical unit, quality ``BAD`` when out of the device's physical or configured
  range (counters are raw register totals; the pipeline's ``Normaliser`` makes them monotonic);
* ``sink.device_status``: every failed poll, and successful polls until ``online_after_successes``
  in a row have been reported (enough for the rule engine's hysteresis without a status per poll);
* ``sink.events``: protocol faults (``modbus.corrupt_frame``, ``modbus.exception_code``; the first
  per device and kind, then at most one a minute with the number suppressed), firmware adaptation
  (``modbus.address_fallback``, ``modbus.point_unsupported``) and ``modbus.overload`` with
  ``data.active`` true when cycles start being skipped and false once none was skipped for
  ``overload_clear_s`` (the rule engine turns it into the ``modbus.overload`` alarm).

``stats`` exposes per-device counters (timeouts, corrupt frames, exception codes, skipped cycles,
lag) and the bus's overload state for the panel.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

from drivers.modbus.device import DevicePoller, PollResult
from drivers.modbus.handover import Handover
from drivers.modbus.profile import ProfileLibrary
from drivers.modbus.scheduler import PollLane
from drivers.modbus.shared_line import SharedRtuLink
from drivers.modbus.transport import RtuLink, TcpLink
from drivers.serial_line import line_name
from edge.clock import Clock, SystemClock
from edge.config import EstateConfig
from edge.config.buses import ModbusRtuBusConfig, ModbusTcpBusConfig
from edge.config.device_options import ModbusTcpDeviceOptions, parse_options
from edge.config.devices import DeviceConfig
from edge.errors import ConfigError, DeviceError, DeviceExceptionCode, DeviceProtocolError
from edge.messages import MessageFields, say
from edge.records import Event, Severity
from edge.sources import Sink

log = logging.getLogger(__name__)

Endpoint = tuple[str, int] | None  # a TCP device's host:port; None for the one line of an RTU bus

ModbusBusConfig = ModbusTcpBusConfig | ModbusRtuBusConfig

FAULT_EVENT_INTERVAL_S = 60.0
_LAG_WINDOW = 20_000


class ModbusSource:
    """Polls every device of one Modbus bus. Construct with ``build`` (from the estate config)."""

    def __init__(
        self,
        bus: ModbusBusConfig,
        devices: Sequence[DeviceConfig],
        *,
        profiles: ProfileLibrary | None = None,
        offline_after: int = 3,
        online_after: int = 2,
        clock: Clock | None = None,
        max_handover_readings: int = 100_000,
    ) -> None:
        self.bus = bus
        self.clock = clock or SystemClock()
        self.offline_after = offline_after
        self.online_after = online_after
        library = profiles or ProfileLibrary([bus.profiles_dir] if bus.profiles_dir else [])
        problems: list[str] = []
        self.pollers: dict[str, DevicePoller] = {}
        self._endpoints: dict[str, tuple[str, int]] = {}
        profile_digests: list[str] = []
        for device in devices:
            if not device.enabled:
                continue
            if not device.profile:
                problems.append(f"device {device.id}: a Modbus device needs a profile")
                continue
            try:
                profile = library.get(device.profile)
            except ConfigError as exc:
                problems.extend(f"device {device.id}: {p}" for p in exc.problems)
                continue
            profile_digests.append(profile.model_dump_json())
            emitted = [name for name, point in profile.points.items() if point.emit]
            for point, rule in device.states.items():  # a misspelt point would never raise its alarm
                missing = [p for p in (point, *rule.context) if p not in emitted]
                if missing:
                    problems.append(f"device {device.id}: states.{point}: profile {profile.id} reports no point "
                                    f"{', '.join(missing)} (its points: {', '.join(emitted)})")
            try:  # the same check as the config's (edge.config.device_options), for sources built directly
                options = parse_options(type(bus).device_options, device.id, device.options)
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            if isinstance(options, ModbusTcpDeviceOptions) and isinstance(bus, ModbusTcpBusConfig):
                self._endpoints[device.id] = (options.host or bus.host, options.port or bus.port)
            self.pollers[device.id] = poller = DevicePoller(
                device, profile, max_gap=bus.max_gap_registers, max_registers=bus.max_registers_per_read
            )
            poller.availability.online_after = online_after
            endpoint = self._endpoints.get(device.id)
            poller.availability.link = (
                f"{endpoint[0]}:{endpoint[1]}" if endpoint
                else line_name(bus.port) if isinstance(bus, ModbusRtuBusConfig) and bus.shared_line
                else f"{bus.kind}:{bus.id}"
            )
        if problems:
            raise ConfigError(f"bus {bus.id}: {len(problems)} problem(s)", problems)
        self._fingerprint = hashlib.sha256(
            json.dumps(
                [bus.model_dump(mode="json"), [d.model_dump(mode="json") for d in devices], profile_digests],
                sort_keys=True,
            ).encode()
        ).hexdigest()[:16]
        self._handover = Handover(max_readings=max_handover_readings)
        self._lanes: list[PollLane] = []
        self._lanes_by_endpoint: dict[Endpoint, PollLane] = {}
        self._lags: deque[float] = deque(maxlen=_LAG_WINDOW)
        self._fault_events: dict[tuple[str, str], tuple[float, int]] = {}
        self.overloaded = False
        self.skipped_cycles = 0
        self.overload_episodes = 0
        self._last_skip = 0.0
        self.readings_out = 0

    # ------------------------------------------------------------------ Source protocol

    @property
    def name(self) -> str:
        return f"bus:{self.bus.id}"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    async def run(self, sink: Sink) -> None:
        self._lanes = self._make_lanes()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._handover.run(sink), name=f"{self.name}:handover")
                tg.create_task(self._housekeeping(), name=f"{self.name}:housekeeping")
                for lane in self._lanes:
                    tg.create_task(lane.run(), name=f"{self.name}:{lane.name}")
        finally:
            await self._handover.flush(sink, timeout=1.0)

    def endpoint(self, device_id: str) -> Endpoint:
        """The device's host:port on a TCP bus; ``None`` on an RTU bus (one line for every device)."""
        return self._endpoints.get(device_id)

    def new_link(self, endpoint: Endpoint) -> TcpLink | RtuLink | SharedRtuLink:
        """A fresh link to ``endpoint`` (or to this bus's RS-485 line), not yet connected."""
        bus = self.bus
        if isinstance(bus, ModbusRtuBusConfig) and bus.shared_line:  # one port object with the meter buses
            return SharedRtuLink(bus.port, baudrate=bus.baudrate, bytesize=bus.bytesize, parity=bus.parity,
                                 stopbits=bus.stopbits, inter_frame_s=bus.inter_frame_s)
        if isinstance(bus, ModbusRtuBusConfig):
            return RtuLink(bus.port, baudrate=bus.baudrate, bytesize=bus.bytesize, parity=bus.parity,
                           stopbits=bus.stopbits, inter_frame_s=bus.inter_frame_s)
        assert endpoint is not None, "a Modbus TCP link needs a host:port"
        return TcpLink(*endpoint, connect_timeout_s=bus.connect_timeout_s)

    def live_link(self, endpoint: Endpoint = None) -> TcpLink | RtuLink | SharedRtuLink | None:
        """A link of the running bus for a probe to borrow.

        The RS-485 line, or (TCP) the first connection to ``endpoint``; ``None`` when the bus is not running
        or nothing polls that host:port.
        """
        lane = self._lanes_by_endpoint.get(endpoint)
        link = lane.links[0] if lane is not None and lane.links else None
        return link if isinstance(link, TcpLink | RtuLink | SharedRtuLink) and not link.retired else None

    def _make_lanes(self) -> list[PollLane]:
        """One lane per RS-485 line, or per TCP host:port; kept by endpoint for ``live_link``."""
        bus = self.bus
        groups: dict[Endpoint, list[DevicePoller]] = {}
        for device_id, poller in self.pollers.items():
            groups.setdefault(self.endpoint(device_id), []).append(poller)
        # An RTU bus has one lane (endpoint None), named after its line, one transaction at a time.
        line = bus.port if isinstance(bus, ModbusRtuBusConfig) else ""
        workers = 1 if isinstance(bus, ModbusRtuBusConfig) else bus.max_connections
        self._lanes_by_endpoint = {
            endpoint: PollLane(
                line if endpoint is None else f"{endpoint[0]}:{endpoint[1]}",
                pollers,
                partial(self.new_link, endpoint),
                workers=workers,
                reporter=self,
                clock=self.clock,
                offline_after=self.offline_after,
                backoff_max_s=bus.backoff_max_s,
            )
            for endpoint, pollers in groups.items()
        }
        return list(self._lanes_by_endpoint.values())

    # ------------------------------------------------------------------ Reporter (called by lanes)

    def poll_ok(self, device: DevicePoller, result: PollResult, ts: datetime) -> None:
        self._report_faults(device, ts)
        if result.events:
            self._handover.put_events(result.events)
        status = device.availability.succeeded(ts)
        if status is not None:
            self._handover.put_status(status)
        self._handover.put_readings(result.readings)
        self.readings_out += len(result.readings)

    def poll_failed(self, device: DevicePoller, error: DeviceError, ts: datetime) -> None:
        if device.stats.consecutive_failures == self.offline_after:
            log.warning("%s: %s offline: %s", self.name, device.device_id, error)
        self._handover.put_status(device.availability.failed(ts, str(error)))
        faults = device.drain_faults()
        if isinstance(error, DeviceExceptionCode) and error not in faults:
            faults.append(error)  # an unanswerable 0x02 that no fallback could get round
        self._report_faults(device, ts, faults)

    def _report_faults(self, device: DevicePoller, ts: datetime, faults: list[DeviceError] | None = None) -> None:
        for fault in device.drain_faults() if faults is None else faults:
            if isinstance(fault, DeviceExceptionCode):
                self._fault_event(device, "modbus.exception_code", ts,
                                  say("device.exception_reply", device=device.device_id, exception=fault.code),
                                  {"code": fault.code, "detail": fault.detail})
            elif isinstance(fault, DeviceProtocolError):
                self._fault_event(device, "modbus.corrupt_frame", ts,
                                  say("device.corrupt_frame", device=device.device_id),
                                  {"detail": fault.detail, "error": str(fault)})

    def skipped(self, device: DevicePoller, cycles: int) -> None:
        self.skipped_cycles += cycles
        self._last_skip = self.clock.monotonic()
        if not self.overloaded:
            self.overloaded = True
            self.overload_episodes += 1
            log.warning("%s: overloaded, skipping late cycles (first: %s)", self.name, device.device_id)
            self._handover.put_events([self._overload_event(True)])

    def lag(self, device: DevicePoller, lag_s: float) -> None:
        self._lags.append(lag_s)

    # ------------------------------------------------------------------ internals

    def _fault_event(self, device: DevicePoller, code: str, ts: datetime, text: MessageFields,
                     data: dict[str, Any]) -> None:
        """First fault of a kind per device at once; then at most one per interval, with a count."""
        now = self.clock.monotonic()
        key = (device.device_id, code)
        last, suppressed = self._fault_events.get(key, (None, 0))
        if last is not None and now - last < FAULT_EVENT_INTERVAL_S:
            self._fault_events[key] = (last, suppressed + 1)
            return
        self._fault_events[key] = (now, 0)
        self._handover.put_events([
            Event(code=code, ts=ts, device_id=device.device_id, severity=Severity.WARNING,
                  data={"bus": self.bus.id, "suppressed": suppressed, **data}, **text)
        ])

    def _overload_event(self, active: bool) -> Event:
        return Event(
            code="modbus.overload",
            ts=self.clock.now(),
            severity=Severity.WARNING if active else Severity.INFO,
            **say("bus.overload" if active else "bus.overload_cleared", bus=self.bus.id),
            data={"bus": self.bus.id, "active": active, "skipped_cycles": self.skipped_cycles},
        )

    async def _housekeeping(self) -> None:
        interval = min(1.0, self.bus.overload_clear_s / 4)
        clock = self.clock
        while True:
            await clock.sleep(interval)
            if self.overloaded and clock.monotonic() - self._last_skip >= self.bus.overload_clear_s:
                self.overloaded = False
                log.info("%s: overload over", self.name)
                self._handover.put_events([self._overload_event(False)])

    # ------------------------------------------------------------------ for the panel and the bench

    def lag_quantile(self, q: float) -> float:
        if not self._lags:
            return 0.0
        ordered = sorted(self._lags)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def stats(self) -> dict[str, Any]:
        return {
            "bus": self.bus.id,
            "kind": self.bus.kind,
            "overloaded": self.overloaded,
            "overload_episodes": self.overload_episodes,
            "skipped_cycles": self.skipped_cycles,
            "readings": self.readings_out,
            "lag_p99_s": round(self.lag_quantile(0.99), 4),
            "handover": {
                "waiting": self._handover.waiting,
                "high_water": self._handover.high_water,
                "dropped_readings": self._handover.dropped_readings,
                "dropped_events": self._handover.dropped_events,
                "sink_errors": self._handover.sink_errors,
            },
            "links": [
                {"name": link.name, "transactions": getattr(link, "transactions", 0),
                 "corrupt_frames": getattr(link, "corrupt_frames", 0), "stale_frames": getattr(link, "stale_frames", 0)}
                for lane in self._lanes for link in lane.links
            ],
            "devices": {device_id: p.stats.as_dict() for device_id, p in self.pollers.items()},
        }


def build(bus: object, devices: list[DeviceConfig], config: EstateConfig) -> ModbusSource:
    """Registry entry point: a source for one ``modbus_tcp`` / ``modbus_rtu`` bus of the estate config."""
    if not isinstance(bus, ModbusTcpBusConfig | ModbusRtuBusConfig):
        raise ConfigError(f"the Modbus driver cannot serve a bus of kind {getattr(bus, 'kind', type(bus).__name__)!r}")
    return ModbusSource(
        bus,
        devices,
        offline_after=config.thresholds.offline_after_failures,
        online_after=config.thresholds.online_after_successes,
    )
