"""The panel's "test device" for Modbus: one read of one configured device, with the bytes on the wire.

``probe_modbus_device(config, bus, device, running_sources)`` reads the device once with a
``DevicePoller`` built exactly as ``ModbusSource`` builds it (same profile, read plan, merging and
decoding, firmware fallbacks included, but no retries), and returns a ``DeviceProbe``:

* ``frames``: per request the request as sent and the response as received (MBAP header or RTU
  CRC included), taken from the link's pymodbus ``trace_packet`` hook before any checking, so a
  corrupt answer is shown as it arrived;
* ``values``: every emitted point as polling would report it, with the registers it came from;
* ``error``: on a timeout, an exception code, a corrupt frame or a connection failure, the error
  text (``ok=False``), with whatever frames were seen. Nothing is raised but cancellation.

Which link: the running poller's, when the daemon polls that bus. An RS-485 line is one shared
wire that pymodbus opens exclusively, and many serial-to-Ethernet converters accept a single TCP
connection, so a probe with a link of its own would either fail to open the port or be refused
while the gateway runs, which is exactly when installers use it. The borrowed link's lock queues
the probe's transactions between the poller's own (inter-frame silence included), so the two never
talk over each other; a probe costs the line the time of one poll. Only when nothing polls the bus
(the daemon is stopped, or the device's host:port is new) does the probe open a short-lived
``TcpLink`` or ``RtuLink`` of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import serial

from drivers.modbus.codec import BIT_FUNCTION_CODES, unpack_bits
from drivers.modbus.device import DevicePoller
from drivers.modbus.driver import ModbusSource
from drivers.modbus.planner import ReadBlock
from drivers.modbus.shared_line import SharedRtuLink
from drivers.modbus.transport import RtuLink, TcpLink
from edge.config import EstateConfig
from edge.config.buses import ModbusRtuBusConfig, ModbusTcpBusConfig
from edge.config.devices import DeviceConfig
from edge.errors import (
    ConfigError,
    DeviceError,
    DeviceExceptionCode,
    DeviceProtocolError,
    DeviceTimeout,
    DeviceUnreachable,
)
from edge.probes import DeviceProbe, ProbeFrame, ProbeValue
from edge.records import Quality

_OUTCOMES: dict[type[DeviceError], str] = {
    DeviceExceptionCode: "exception answer",
    DeviceProtocolError: "corrupt or malformed",
    DeviceTimeout: "incomplete, then silence",
    DeviceUnreachable: "connection lost",
}


class _RecordingLink:
    """A link that records each transaction's request and response bytes (through the link's tap).

    pymodbus hands the tap its whole receive buffer each time bytes arrive, so the response of a
    transaction is the last buffer seen, less whatever was already buffered when the request went out.
    A *borrowed* link belongs to the running poller: the probe's transactions queue on its lock
    between the poller's own, and closing the probe leaves it open.
    """

    def __init__(self, link: TcpLink | RtuLink | SharedRtuLink, *, borrowed: bool) -> None:
        self.link = link
        self.name = link.name
        self.borrowed = borrowed
        self.frames: list[ProbeFrame] = []
        self.reads: list[tuple[int, int, int, bytes]] = []  # (fc, address, count, register bytes)
        self._tx: bytes | None = None
        self._rx = b""
        self._rx_base = b""

    def _reset(self) -> None:
        """Forget the last transaction's bytes (the tap fills them in again during the next one)."""
        self._tx, self._rx, self._rx_base = None, b"", b""

    def _tap(self, sending: bool, data: bytes) -> None:
        if sending:
            self._tx = bytes(data)
            self._rx_base = self.link.receive_buffer()
        elif self._tx is not None:
            seen = bytes(data)
            self._rx = seen[len(self._rx_base):] if self._rx_base and seen.startswith(self._rx_base) else seen

    async def read(self, device_id: str, unit: int, function_code: int, address: int, count: int,
                   timeout: float) -> bytes:
        self._reset()  # a call, not assignments: the tap sets _tx while the read is awaited
        where = f"unit {unit} FC{function_code} {address:#06x}+{count}"
        outcome = ""
        try:
            data = await self.link.read(device_id, unit, function_code, address, count, timeout, tap=self._tap)
        except DeviceError as exc:
            outcome = _OUTCOMES.get(type(exc), "failed")
            raise
        finally:
            if self._tx is not None:
                self.frames.append(ProbeFrame("tx", self._tx, f"read {where}"))
            if self._rx:
                self.frames.append(ProbeFrame("rx", self._rx, outcome or f"{len(self._rx)} bytes"))
        self.reads.append((function_code, address, count, data))
        return data

    def close(self) -> None:
        if not self.borrowed:
            self.link.close()


def _why_port_fails(port: str) -> str:
    """The operating system's reason a serial port cannot be opened (pymodbus only logs it), or ""."""
    try:
        serial.Serial(port, exclusive=True).close()
    except (serial.SerialException, OSError, ValueError) as exc:
        return str(exc)
    return ""


def _registers_text(reads: list[tuple[int, int, int, bytes]], fc: int, address: int, count: int) -> str:
    """``"0x2000: 4365 0000"``: the point's registers as read (the last read that covered them)."""
    for r_fc, r_addr, r_count, data in reversed(reads):
        if r_fc == fc and r_addr <= address and address + count <= r_addr + r_count:
            if fc in BIT_FUNCTION_CODES:  # one coil / input: its bit, as the packed answer carried it
                return f"{address:#06x}: {unpack_bits(data, r_count)[address - r_addr]}"
            start = 2 * (address - r_addr)
            chunk = data[start : start + 2 * count]
            return f"{address:#06x}: " + " ".join(chunk[i : i + 2].hex() for i in range(0, len(chunk), 2))
    return ""


def _located(plan: list[ReadBlock]) -> dict[str, tuple[int, int]]:
    """Point name -> (function code, address) in the poller's current plan (after any fallback)."""
    return {name: (b.function_code, b.address + offset) for b in plan for name, offset in b.points}


async def probe_modbus_device(
    config: EstateConfig, bus: object, device: DeviceConfig, running_sources: Sequence[object] = ()
) -> DeviceProbe:
    """Read ``device`` once; a failure is a result with ``ok=False``, never an exception.

    ``running_sources`` are the daemon's sources: when one polls this bus, its link to the line (or
    to the device's host:port) is borrowed; otherwise the probe opens a short-lived link of its own.
    """
    started = time.perf_counter()

    def result(ok: bool, frames: list[ProbeFrame], values: tuple[ProbeValue, ...] = (),
               error: str | None = None) -> DeviceProbe:
        return DeviceProbe(device.id, ok, tuple(frames), values, error,
                           round((time.perf_counter() - started) * 1000, 1))

    if not isinstance(bus, ModbusTcpBusConfig | ModbusRtuBusConfig):
        return result(False, [], error=f"bus {getattr(bus, 'id', '?')} is not a Modbus bus")
    # The same validation and the same poller construction as the running source (a disabled
    # device may still be tested: that is how an installer checks it before enabling it).
    try:
        source = ModbusSource(bus, [device.model_copy(update={"enabled": True})])
    except ConfigError as exc:
        return result(False, [], error="; ".join(exc.problems) or str(exc))
    poller: DevicePoller = source.pollers[device.id]

    running = next((r for r in running_sources if isinstance(r, ModbusSource) and r.bus.id == bus.id), None)
    endpoint = source.endpoint(device.id)
    live = running.live_link(endpoint) if running is not None else None
    link = _RecordingLink(live or source.new_link(endpoint), borrowed=live is not None)
    try:
        poll = await poller.poll(link, datetime.now(UTC), asyncio.get_running_loop().time(), retries=0)
    except DeviceError as exc:
        error = str(exc)
        if isinstance(bus, ModbusRtuBusConfig) and isinstance(exc, DeviceUnreachable) and not link.frames:
            reason = await asyncio.to_thread(_why_port_fails, bus.port)
            error = (f"cannot open serial port {bus.port}: {reason or exc} (is another program, or another "
                     f"gateway process, using the line?)")
        return result(False, link.frames, error=error)
    finally:
        link.close()

    located = _located(poller.plan)
    registers = {name: spec.registers for name, spec in poller.profile.points.items()}
    values = []
    for reading in poll.readings:
        fc, address = located.get(reading.point, (0, -1))
        raw = _registers_text(link.reads, fc, address, registers[reading.point]) if address >= 0 else ""
        if reading.quality is not Quality.GOOD:
            raw = f"{raw} [quality {reading.quality.name.lower()}]".strip()
        values.append(ProbeValue(reading.point, reading.value, reading.unit, raw))
    return result(True, link.frames, tuple(values))
