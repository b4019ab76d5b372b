"""The panel's "test device" for Modbus: one read of one configured device, with the bytes on the wire.

``probe_modbus_device(config, bus, device)`` opens its *own* short-lived link (``TcpLink`` or
``RtuLink``, the same classes polling uses), reads the device once with a ``DevicePoller`` built
exactly as ``ModbusSource`` builds it (same profile, read plan, merging and decoding, firmware
fallbacks included, but no retries), and returns a ``DeviceProbe``:

* ``frames``: per request the request as sent and the response as received (MBAP header or RTU
  CRC included), taken from the link's pymodbus ``trace_packet`` hook before any checking, so a
  corrupt answer is shown as it arrived;
* ``values``: every emitted point as polling would report it, with the registers it came from;
* ``error``: on a timeout, an exception code, a corrupt frame or a connection failure, the error
  text (``ok=False``), with whatever frames were seen. Nothing is raised but cancellation.

Why its own link: a probe must not share (or reset) a running poller's connection state. Over TCP
it is one more connection to the meter or converter for the duration of one poll. An RS-485 line
is different: pymodbus opens serial ports exclusively, so while the daemon's poller holds the
port the probe cannot open it and says so (naming the port) instead of talking over the poller.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import serial

from drivers.modbus.device import DevicePoller
from drivers.modbus.driver import ModbusSource
from drivers.modbus.planner import ReadBlock
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
from edge.panel.hooks import DeviceProbe, ProbeFrame, ProbeValue
from edge.records import Quality

_OUTCOMES: dict[type[DeviceError], str] = {
    DeviceExceptionCode: "exception answer",
    DeviceProtocolError: "corrupt or malformed",
    DeviceTimeout: "incomplete, then silence",
    DeviceUnreachable: "connection lost",
}


class _FrameRecorder:
    """Mixed into a link: records each transaction's request and response bytes via ``trace_packet``.

    pymodbus hands the hook its whole receive buffer each time bytes arrive, so the response of a
    transaction is the last buffer seen, less whatever was already buffered when the request went out.
    """

    _client: object

    def _probe_init(self) -> None:
        self.frames: list[ProbeFrame] = []
        self.reads: list[tuple[int, int, int, bytes]] = []  # (fc, address, count, register bytes)
        self._tx: bytes | None = None
        self._rx = b""
        self._rx_base = b""

    def _buffered(self) -> bytes:
        return bytes(getattr(getattr(self._client, "ctx", None), "recv_buffer", b"") or b"")

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self._tx = bytes(data)
            self._rx_base = self._buffered()
        elif self._tx is not None:
            seen = bytes(data)
            self._rx = seen[len(self._rx_base):] if self._rx_base and seen.startswith(self._rx_base) else seen
        return super()._trace_packet(sending, data)  # type: ignore[misc]

    async def read(self, device_id: str, unit: int, function_code: int, address: int, count: int,
                   timeout: float) -> bytes:
        self._tx, self._rx, self._rx_base = None, b"", b""
        where = f"unit {unit} FC{function_code} {address:#06x}+{count}"
        outcome = ""
        try:
            data: bytes = await super().read(  # type: ignore[misc]
                device_id, unit, function_code, address, count, timeout
            )
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


class _ProbeTcpLink(_FrameRecorder, TcpLink):
    def __init__(self, host: str, port: int, *, connect_timeout_s: float) -> None:
        TcpLink.__init__(self, host, port, connect_timeout_s=connect_timeout_s)
        self._probe_init()


class _ProbeRtuLink(_FrameRecorder, RtuLink):
    def __init__(self, bus: ModbusRtuBusConfig) -> None:
        RtuLink.__init__(self, bus.port, baudrate=bus.baudrate, bytesize=bus.bytesize, parity=bus.parity,
                         stopbits=bus.stopbits, inter_frame_s=bus.inter_frame_s)
        self._probe_init()


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
            start = 2 * (address - r_addr)
            chunk = data[start : start + 2 * count]
            return f"{address:#06x}: " + " ".join(chunk[i : i + 2].hex() for i in range(0, len(chunk), 2))
    return ""


def _located(plan: list[ReadBlock]) -> dict[str, tuple[int, int]]:
    """Point name -> (function code, address) in the poller's current plan (after any fallback)."""
    return {name: (b.function_code, b.address + offset) for b in plan for name, offset in b.points}


async def probe_modbus_device(config: EstateConfig, bus: object, device: DeviceConfig) -> DeviceProbe:
    """Read ``device`` once over its own link; a failure is a result with ``ok=False``, never an exception."""
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

    link: _ProbeTcpLink | _ProbeRtuLink
    if isinstance(bus, ModbusTcpBusConfig):
        host = str(device.options.get("host", bus.host))
        port = int(device.options.get("port", bus.port))  # type: ignore[call-overload]
        link = _ProbeTcpLink(host, port, connect_timeout_s=bus.connect_timeout_s)
    else:
        link = _ProbeRtuLink(bus)
    try:
        poll = await poller.poll(link, datetime.now(UTC), asyncio.get_running_loop().time(), retries=0)
    except DeviceError as exc:
        error = str(exc)
        if isinstance(bus, ModbusRtuBusConfig) and isinstance(exc, DeviceUnreachable) and not link.frames:
            reason = await asyncio.to_thread(_why_port_fails, bus.port)
            error = (f"cannot open serial port {bus.port}: {reason or exc} (while bus {bus.id} is polled, the "
                     f"gateway's poller holds the port; the probe does not talk over it)")
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
