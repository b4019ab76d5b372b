"""The meter-line sources: one per ``dlt645`` / ``cjt188`` bus, implementing ``edge.sources.Source``.

They are Modbus RTU lines in everything but the bytes, so they *are* ``ModbusSource``s with another
poller and link: the lane scheduler (slots spread over the period, skipping late cycles,
retries, backoff of a dead meter), the hand-over (bounded, to the sink), the offline /
online reporting (``DeviceStatus`` per failed poll, the first ``online_after`` successes), the
fault events (first per kind at once, then one a minute) and the overload alarm all come from
``drivers.modbus`` unchanged. What differs is named after the protocol: events are
``<protocol>.corrupt_frame``, ``<protocol>.exception_code`` and ``<protocol>.overload`` (the rule
engine maps the last to the same overload alarm as Modbus).

The DL/T 645 source can also broadcast the gateway's time to its meters (``time_sync``, off by
default: many utilities forbid it on their billing meters) through the same line lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from drivers.dlt645 import codec
from drivers.dlt645.device import MeterPoller
from drivers.dlt645.line import Scanner, SerialLine
from drivers.dlt645.profile import load_profile
from drivers.modbus.driver import Endpoint, ModbusSource
from drivers.modbus.profile import ProfileLibrary
from drivers.modbus.scheduler import PollLane
from drivers.serial_line import line_name
from edge.clock import Clock
from edge.config import EstateConfig
from edge.config.buses import Cjt188BusConfig, Dlt645BusConfig
from edge.config.devices import DeviceConfig
from edge.errors import ConfigError, DeviceError, DeviceExceptionCode, DeviceProtocolError
from edge.messages import say
from edge.records import Event, Severity

log = logging.getLogger(__name__)

MeterBusConfig = Dlt645BusConfig | Cjt188BusConfig
PollerFactory = Callable[[DeviceConfig, tuple[str, ...]], Any]


class MeterLineSource(ModbusSource):
    """Polls every meter of one RS-485 line. ``poller_factory(device, profile_dirs)`` builds a poller."""

    protocol = "meter"
    scanner: Scanner

    def __init__(
        self,
        bus: MeterBusConfig,
        devices: Sequence[DeviceConfig],
        poller_factory: PollerFactory,
        *,
        offline_after: int = 3,
        online_after: int = 2,
        clock: Clock | None = None,
    ) -> None:
        # The Modbus source's bookkeeping (hand-over, overload state, fault throttling) with no Modbus devices.
        super().__init__(bus, [], profiles=ProfileLibrary([]), offline_after=offline_after,  # type: ignore[arg-type]
                         online_after=online_after, clock=clock)
        dirs = (bus.profiles_dir,) if bus.profiles_dir else ()
        problems: list[str] = []
        digests: list[str] = []
        addresses: dict[str, str] = {}
        for device in devices:
            if not device.enabled:
                continue
            if not device.profile:
                problems.append(f"device {device.id}: a {self.protocol} meter needs a profile")
                continue
            try:
                poller = poller_factory(device, dirs)
            except ConfigError as exc:
                problems.extend(f"device {device.id}: {p}" if not p.startswith("device ") else p for p in exc.problems)
                continue
            if poller.address in addresses:
                problems.append(f"device {device.id}: address {poller.address} is already {addresses[poller.address]}'s")
                continue
            addresses[poller.address] = device.id
            poller.availability.online_after = online_after
            # One link alarm when the whole line is down (as a Modbus RTU line); the physical line's, if shared.
            poller.availability.link = line_name(bus.port) if bus.shared_line else f"{bus.kind}:{bus.id}"
            digests.append(poller.profile.model_dump_json())
            self.pollers[device.id] = poller
        if problems:
            raise ConfigError(f"bus {bus.id}: {len(problems)} problem(s)", problems)
        self._fingerprint = hashlib.sha256(
            json.dumps([bus.model_dump(mode="json"), [d.model_dump(mode="json") for d in devices], digests],
                       sort_keys=True).encode()
        ).hexdigest()[:16]

    # ------------------------------------------------------------------ links and lanes

    def new_link(self, endpoint: Endpoint = None) -> SerialLine:  # type: ignore[override]
        bus: MeterBusConfig = self.bus  # type: ignore[assignment]
        return SerialLine(bus.port, type(self).scanner, baudrate=bus.baudrate, bytesize=bus.bytesize,
                          parity=bus.parity, stopbits=bus.stopbits, inter_frame_s=bus.inter_frame_s,
                          shared=bus.shared_line)

    def live_link(self, endpoint: Endpoint = None) -> SerialLine | None:  # type: ignore[override]
        lane = self._lanes_by_endpoint.get(None)
        links: Sequence[object] = lane.links if lane is not None else ()  # typed for Modbus links, holds SerialLines
        link = links[0] if links else None
        return link if isinstance(link, SerialLine) and not link.retired else None

    def _make_lanes(self) -> list[PollLane]:
        if not self.pollers:
            self._lanes_by_endpoint = {}
            return []
        bus: MeterBusConfig = self.bus  # type: ignore[assignment]
        # arg-type: PollLane is typed for Modbus links; a meter line's lane runs on SerialLines
        lane = PollLane(bus.port, list(self.pollers.values()), self.new_link, workers=1, reporter=self,  # type: ignore[arg-type]
                    clock=self.clock, offline_after=self.offline_after, backoff_max_s=bus.backoff_max_s)
        self._lanes_by_endpoint = {None: lane}
        return [lane]

    # ------------------------------------------------------------------ events named after the protocol

    def _report_faults(self, device: Any, ts: datetime, faults: list[DeviceError] | None = None) -> None:
        for fault in device.drain_faults() if faults is None else faults:
            if isinstance(fault, DeviceExceptionCode):
                self._fault_event(device, f"{self.protocol}.exception_code", ts,
                                  say("device.exception_reply", device=device.device_id, exception=fault.code),
                                  {"code": fault.code, "detail": fault.detail, "error": str(fault)})
            elif isinstance(fault, DeviceProtocolError):
                self._fault_event(device, f"{self.protocol}.corrupt_frame", ts,
                                  say("device.corrupt_frame", device=device.device_id),
                                  {"detail": fault.detail, "reason": getattr(fault, "reason", ""), "error": str(fault)})

    def _overload_event(self, active: bool) -> Event:
        return Event(
            code=f"{self.protocol}.overload",
            ts=self.clock.now(),
            severity=Severity.WARNING if active else Severity.INFO,
            **say("bus.overload" if active else "bus.overload_cleared", bus=self.bus.id),
            data={"bus": self.bus.id, "active": active, "skipped_cycles": self.skipped_cycles},
        )

    @property
    def stats(self) -> dict[str, Any]:
        out = super().stats
        out["links"] = [
            {"name": link.name, "transactions": link.transactions, "corrupt_frames": link.corrupt_frames,
             "garbage_bytes": link.garbage_bytes, "stale_bytes": link.stale_bytes, "echoes": link.echoes}
            for lane in self._lanes for link in lane.links if isinstance(link, SerialLine)
        ]
        return out


def _dlt645_poller(device: DeviceConfig, dirs: tuple[str, ...]) -> MeterPoller:
    return MeterPoller(device, load_profile(device.profile or "", dirs))


class Dlt645Source(MeterLineSource):
    """DL/T 645 meters on one line, with the optional broadcast time sync."""

    protocol = "dlt645"
    scanner = staticmethod(codec.scan_frame)

    def __init__(self, bus: Dlt645BusConfig, devices: Sequence[DeviceConfig], *, timezone: str = "Asia/Shanghai",
                 **kwargs: Any) -> None:
        super().__init__(bus, devices, _dlt645_poller, **kwargs)
        self.tz = ZoneInfo(timezone)  # meters keep the estate's local time
        self.time_syncs = 0

    async def run(self, sink: Any) -> None:
        bus: Dlt645BusConfig = self.bus  # type: ignore[assignment]
        if not bus.time_sync:
            await super().run(sink)
            return
        async with asyncio.TaskGroup() as tg:
            tg.create_task(super().run(sink), name=f"{self.name}:poll")
            tg.create_task(self._time_sync(bus.time_sync_interval_s), name=f"{self.name}:time-sync")

    async def _time_sync(self, interval: float) -> None:
        while True:
            link = self.live_link()
            if link is not None:
                try:
                    now = self.clock.now().astimezone(self.tz)
                    await link.transact("broadcast", codec.time_sync_request(now), timeout=0.0,
                                        detail="time sync", expect_reply=False)
                    self.time_syncs += 1
                except DeviceError as exc:
                    log.warning("%s: time broadcast failed: %s", self.name, exc)
                await asyncio.sleep(interval)
            else:
                await asyncio.sleep(1.0)  # the line opens with the first poll


def build(bus: object, devices: list[DeviceConfig], config: EstateConfig) -> Dlt645Source:
    """Registry entry point for a ``dlt645`` bus."""
    if not isinstance(bus, Dlt645BusConfig):
        raise ConfigError(f"the DL/T 645 driver cannot serve a bus of kind {getattr(bus, 'kind', type(bus).__name__)!r}")
    return Dlt645Source(bus, devices, offline_after=config.thresholds.offline_after_failures,
                        online_after=config.thresholds.online_after_successes, timezone=config.estate.timezone)
