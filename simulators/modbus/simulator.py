"""The Modbus simulator: one process (or one task group, in tests) serving every device of a scenario.

    async with ModbusSimulator(load_scenario(path)) as sim:
        print("\\n".join(sim.describe()))
        ...

Devices are built from the same profiles the gateway uses. Cues run on the event loop's clock,
relative to ``start()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from drivers.modbus.profile import ProfileLibrary
from simulators.modbus.device import SimClock, SimDevice
from simulators.modbus.scenario import Behaviour, Cue, Scenario, SimDeviceSpec
from simulators.modbus.servers import RtuServer, TcpServer

log = logging.getLogger(__name__)


class ModbusSimulator:
    def __init__(self, scenario: Scenario, profiles: ProfileLibrary | None = None) -> None:
        self.scenario = scenario
        self.profiles = profiles or ProfileLibrary()
        self.devices: dict[str, SimDevice] = {}
        self.tcp_servers: list[TcpServer] = []
        self.rtu_servers: dict[str, RtuServer] = {}
        self._cue_task: asyncio.Task[None] | None = None
        self._clock: SimClock | None = None
        self._t0 = 0.0

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> ModbusSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._t0 = loop.time()
        start = datetime.fromisoformat(self.scenario.start) if self.scenario.start else datetime.now(UTC)
        self._clock = SimClock(start, self.scenario.time_scale, self._t0)
        try:
            for listener in self.scenario.tcp:
                ports = [listener.port] if listener.port is not None else list(
                    range(listener.ports[0], listener.ports[1] + 1)  # type: ignore[index]
                )
                for port in ports:
                    server = TcpServer(listener.host, port, {})
                    await server.start()
                    for spec in listener.devices:
                        for unit, device_id in self._units(spec, server.port):
                            server.devices[unit] = self._device(spec, unit, device_id)
                    self.tcp_servers.append(server)
            for line in self.scenario.rtu:
                devices: dict[int, SimDevice] = {}
                for spec in line.devices:
                    for unit, device_id in self._units(spec, None):
                        devices[unit] = self._device(spec, unit, device_id)
                server = RtuServer(line.link, devices, baudrate=line.baudrate, bytesize=line.bytesize,
                                   parity=line.parity, stopbits=line.stopbits, strict_silence=line.strict_silence)
                await server.start()
                self.rtu_servers[line.id] = server
        except BaseException:
            await self.stop()
            raise
        if self.scenario.cues:
            self._cue_task = loop.create_task(self._run_cues(), name="modbus-sim:cues")

    async def stop(self) -> None:
        if self._cue_task is not None:
            self._cue_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cue_task
            self._cue_task = None
        for server in self.tcp_servers:
            await server.stop()
        for rtu in self.rtu_servers.values():
            await rtu.stop()
        self.tcp_servers.clear()
        self.rtu_servers.clear()

    def _units(self, spec: SimDeviceSpec, port: int | None) -> list[tuple[int, str]]:
        if spec.unit_id is not None:
            return [(spec.unit_id, spec.id)]
        lo, hi = spec.unit_ids  # type: ignore[misc]
        where = f"{port}-" if port is not None else ""
        return [(unit, f"{spec.id}-{where}{unit}") for unit in range(lo, hi + 1)]

    def _device(self, spec: SimDeviceSpec, unit: int, device_id: str) -> SimDevice:
        if device_id in self.devices:
            raise ValueError(f"simulated device id {device_id!r} is used twice")
        assert self._clock is not None
        device = SimDevice(spec, unit, device_id, self.profiles.get(spec.profile), self._clock, self.scenario.seed)
        self.devices[device_id] = device
        return device

    # ------------------------------------------------------------------ cues

    async def _run_cues(self) -> None:
        loop = asyncio.get_running_loop()
        for cue in sorted(self.scenario.cues, key=lambda c: c.at):
            delay = self._t0 + cue.at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                self.apply(cue)
            except Exception:
                log.exception("cue %r failed", cue)

    def apply(self, cue: Cue) -> None:
        """Apply one cue now (tests call it directly to script a device)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        device = self.devices.get(cue.device)
        if device is None:
            raise KeyError(f"cue for unknown device {cue.device!r} (known: {', '.join(sorted(self.devices))})")
        until = now + cue.duration if cue.duration else None
        if cue.action in ("offline", "slow", "exception", "corrupt", "short", "garbage", "normal"):
            behaviour = Behaviour(mode=cue.action, delay=cue.delay, code=cue.code, probability=cue.probability)
            device.set_behaviour(behaviour, until)
            log.info("sim: %s -> %s", device.id, cue.action)
            return
        point = cue.point or device.model.main_point()
        assert self._clock is not None
        if cue.action == "ramp":
            if cue.to is None:
                raise ValueError("a ramp cue needs 'to'")
            device.model.ramp(point, cue.to, cue.over, now, self._clock.at(now))
        elif cue.action == "set":
            if cue.value is None:
                raise ValueError("a set cue needs 'value'")
            device.model.set(point, cue.value)
        elif cue.action == "replace":
            device.model.replace(cue.value or 0.0)
        device._built_at = None

    def set_behaviour(self, device_id: str, mode: str, **kwargs: Any) -> None:
        self.devices[device_id].set_behaviour(Behaviour(mode=mode, **kwargs), None)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ reporting

    def describe(self) -> list[str]:
        lines = [f"scenario {self.scenario.name!r}: {len(self.devices)} devices"]
        for server in self.tcp_servers:
            for unit, device in sorted(server.devices.items()):
                lines.append(f"tcp {server.host}:{server.port} unit {unit} {device.id} {device.profile.id}")
        for line_id, rtu in self.rtu_servers.items():
            for unit, device in sorted(rtu.devices.items()):
                lines.append(f"rtu {rtu.link} ({line_id}, {rtu.baudrate} baud) unit {unit} {device.id} {device.profile.id}")
        for cue in self.scenario.cues:
            what = ""
            if cue.action == "set" and cue.value is not None:
                what = f" {cue.point} = {cue.value:g}" if cue.point else f" {cue.value:g}"
            lines.append(f"cue at {cue.at:g} s: {cue.device} {cue.action}{what}"
                         + (f" for {cue.duration:g} s" if cue.duration else ""))
        return lines

    def device(self, device_id: str) -> SimDevice:
        return self.devices[device_id]
