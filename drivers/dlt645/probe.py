"""The panel's "test device" for meter lines (DL/T 645, CJ/T 188), and the read-address command for commissioning.

``probe_meter_device(bus, device, running_sources)`` reads the meter once with the poller its
source would build (same profile, same reply checks, no retries) and returns a ``DeviceProbe`` with
every frame as it went out and came in, and the values as polling would report them. As for Modbus
(``drivers.modbus.probe``), it borrows the running source's line when the daemon polls that bus (an
RS-485 port is opened exclusively; the line lock queues the probe between the poller's own
transactions), and only opens a short-lived line of its own when nothing polls the bus.

``read_meter_address(bus, running_sources)`` asks the one meter on a line for its address (DL/T 645
``68 AA..AA 68 13 00``, CJ/T 188 T=AA, DI 810A): an installer fitting a meter whose label is
unreadable. With several meters on the line they all answer at once and the frames collide; the
answer is then a protocol error, which is the right thing to tell the installer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from drivers.cjt188 import codec as cjt188
from drivers.dlt645 import codec as dlt645
from drivers.dlt645.line import SerialLine
from drivers.dlt645.source import MeterLineSource
from edge.config.buses import Cjt188BusConfig, Dlt645BusConfig
from edge.config.devices import DeviceConfig
from edge.errors import ConfigError, DeviceError
from edge.probes import DeviceProbe, ProbeFrame, ProbeValue

MeterBus = Dlt645BusConfig | Cjt188BusConfig


class _RecordingLine:
    """Passes transactions to a line and keeps their bytes (the line's tap sees them before any check)."""

    def __init__(self, line: SerialLine) -> None:
        self.line = line
        self.name = line.name
        self.frames: list[ProbeFrame] = []

    def _tap(self, sending: bool, data: bytes) -> None:
        self.frames.append(ProbeFrame("tx" if sending else "rx", bytes(data)))

    async def transact(self, device_id: str, request: bytes, *, timeout: float, detail: str,
                       expect_reply: bool = True) -> Any:
        return await self.line.transact(device_id, request, timeout=timeout, detail=detail,
                                        expect_reply=expect_reply, tap=self._tap)


def _source_class(bus: MeterBus) -> type[MeterLineSource]:
    if isinstance(bus, Dlt645BusConfig):
        from drivers.dlt645.source import Dlt645Source

        return Dlt645Source
    from drivers.cjt188.source import Cjt188Source

    return Cjt188Source


def _source(bus: MeterBus, device: DeviceConfig) -> MeterLineSource:
    """A source for ``device`` alone: its poller is what the probe runs (one per kind, each with its bus type)."""
    if isinstance(bus, Dlt645BusConfig):
        from drivers.dlt645.source import Dlt645Source

        return Dlt645Source(bus, [device])
    from drivers.cjt188.source import Cjt188Source

    return Cjt188Source(bus, [device])


def _line(bus: MeterBus, running_sources: Sequence[object]) -> tuple[SerialLine, bool]:
    """The running source's line (borrowed) or a new one (the caller closes it)."""
    for source in running_sources:
        if isinstance(source, MeterLineSource) and source.bus.id == bus.id:
            live = source.live_link()
            if live is not None:
                return live, True
    cls = _source_class(bus)
    return SerialLine(bus.port, cls.scanner, baudrate=bus.baudrate, bytesize=bus.bytesize, parity=bus.parity,
                      stopbits=bus.stopbits, inter_frame_s=bus.inter_frame_s, shared=bus.shared_line), False


async def probe_meter_device(bus: MeterBus, device: DeviceConfig, running_sources: Sequence[object] = ()) -> DeviceProbe:
    started = time.perf_counter()
    try:
        source = _source(bus, device)
    except ConfigError as exc:
        return DeviceProbe(device.id, ok=False, error="; ".join(exc.problems))
    poller = source.pollers[device.id]
    line, borrowed = _line(bus, running_sources)
    recording = _RecordingLine(line)
    try:
        # arg-type: ModbusSource.pollers is typed with the Modbus Link; a meter poller takes a serial line
        result = await poller.poll(recording, datetime.now(UTC), time.monotonic(), retries=0)  # type: ignore[arg-type]
    except DeviceError as exc:
        return DeviceProbe(device.id, ok=False, frames=tuple(recording.frames), error=str(exc),
                           duration_ms=(time.perf_counter() - started) * 1000)
    finally:
        if not borrowed:
            line.close()
    values = tuple(ProbeValue(r.point, r.value, r.unit) for r in result.readings)
    return DeviceProbe(device.id, ok=True, frames=tuple(recording.frames), values=values,
                       duration_ms=(time.perf_counter() - started) * 1000)


async def read_meter_address(bus: MeterBus, running_sources: Sequence[object] = (), *, timeout: float = 1.0) -> str:
    """The address of the single meter on the line; raises ``DeviceError`` (timeout, collision, corrupt)."""
    line, borrowed = _line(bus, running_sources)
    try:
        if isinstance(bus, Dlt645BusConfig):
            frame = await line.transact("commissioning", dlt645.read_address_request(), timeout=timeout,
                                        detail="read address")
            try:
                return dlt645.check_address_reply(frame)
            except dlt645.FrameError as exc:
                raise exc.for_device("commissioning", "read address") from None
        frame = await line.transact("commissioning", cjt188.read_address_request(1), timeout=timeout,
                                    detail="read address")
        try:
            return cjt188.check_address_reply(frame, 1)[1]
        except dlt645.FrameError as exc:
            raise exc.for_device("commissioning", "read address") from None
    finally:
        if not borrowed:
            line.close()
