"""The GB/T 26875.3 source: a TCP server that user information transmission devices connect to.

One source per ``gb26875`` bus, implementing ``edge.sources.Source``. Devices are the clients (the
standard's monitoring centre listens); several connect at once, each on its own connection task,
so a slow or babbling device never holds up another.

Per connection:

* frames are cut from the byte stream by ``codec.scan_frame``; garbage between frames is skipped
  and counted; a frame with a bad checksum or end marker is denied (6) when its header can be
  read, counted, and reported as ``gb26875.corrupt_frame`` (first per device at once, then at most
  one a minute), and never becomes a reading;
* every data frame (2 send data, 5 response) is confirmed (3) with its own serial number only once
  its readings and events are committed to the store (the device keeps and resends what was not
  confirmed, so a fire reported just before a power cut is not lost), or denied (6) when its
  application data does not decode, its source address is not a configured device
  (``gb26875.unknown_device``, once per address), the store failed, or the hand-over is full;
* the first frame of a connection identifies the device; with ``time_sync`` the gateway then sets
  its clock (control 1, type 90);
* a connection silent for ``idle_timeout_s`` is closed.

Availability follows the contract every source keeps (``DeviceStatus`` per attempt): a configured
device that was heard in an ``idle_timeout_s`` window is reported online (the first
``online_after`` times), and each window in which it was silent or not connected is one failed
attempt, so the rule engine raises ``device.offline`` after ``offline_after_failures`` silent
windows exactly as for a meter that stopped answering.

Hand-over to the sink (written policy): the records of data frames go through one delivery task
that takes everything waiting at once, so the frames of 20 devices arriving during one commit
share the next commit (group commit: an alarm waits at most about two commits, not one per frame
queued before it); at most ``MAX_WAITING`` records wait, beyond that frames are denied and the
devices resend them. Device statuses and protocol-fault events go through the bounded ``Handover``
of the polled buses (``drivers.modbus.handover``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from drivers.dlt645.codec import FrameError, Verdict
from drivers.gb26875 import codec
from drivers.gb26875.state import PanelState
from drivers.modbus.handover import Handover
from edge.availability import DeviceAvailability
from edge.clock import Clock, SystemClock
from edge.config import EstateConfig
from edge.config.buses import Gb26875BusConfig
from edge.config.device_options import Gb26875DeviceOptions, parse_options
from edge.config.devices import DeviceConfig
from edge.errors import ConfigError
from edge.messages import say
from edge.probes import DeviceProbe, ProbeValue
from edge.records import Event, Reading, Severity
from edge.sources import Sink

log = logging.getLogger(__name__)

FAULT_EVENT_INTERVAL_S = 60.0
MAX_WAITING = 10_000  # readings + events waiting for the sink; beyond it data frames are denied
_READ_SIZE = 65536
_MAX_BUFFER = 64 * 1024


def parse_address(value: object, where: str) -> int:
    """A 6-byte device address from YAML: an integer, or a string in hex (``0x1d6dd53c10ac``) or decimal."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{where}: an address must be an integer or a string, not {value!r}")
    try:
        number = value if isinstance(value, int) else int(value, 0)
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not a number (write hex as 0x...)") from None
    if not 0 <= number < 2**48:
        raise ConfigError(f"{where}: {value!r} does not fit 6 bytes")
    return number


@dataclass(slots=True)
class _Device:
    device_id: str
    address: int
    availability: DeviceAvailability
    heard: bool = False  # heard in the current availability window
    connected: int = 0
    frames: int = 0
    corrupt_frames: int = 0
    denied: int = 0
    last_frame_mono: float = 0.0


@dataclass(slots=True)
class _Connection:
    """One transmission device's TCP connection: whom it speaks for so far, its time-sync serial."""

    writer: asyncio.StreamWriter
    device: _Device | None = None
    serial: int = 0


class Gb26875Source:
    """Listens for transmission devices; construct with ``build`` (from the estate config)."""

    def __init__(
        self,
        bus: Gb26875BusConfig,
        devices: Sequence[DeviceConfig],
        *,
        offline_after: int = 3,
        online_after: int = 2,
        clock: Clock | None = None,
        timezone: str = "Asia/Shanghai",
    ) -> None:
        self.bus = bus
        self.clock = clock or SystemClock()
        self.offline_after = offline_after
        self.online_after = online_after
        self.tz = ZoneInfo(timezone)
        problems: list[str] = []
        self.devices: dict[int, _Device] = {}
        by_id: dict[str, _Device] = {}
        components: list[tuple[DeviceConfig, Gb26875DeviceOptions]] = []
        for device in devices:
            if not device.enabled:
                continue
            try:  # the same check as the config's (edge.config.device_options), for sources built directly
                options = parse_options(Gb26875DeviceOptions, device.id, device.options)
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            if options.address is not None:
                try:
                    address = parse_address(options.address, f"device {device.id}: options.address")
                except ConfigError as exc:
                    problems.extend(exc.problems)
                    continue
                if address in self.devices:
                    problems.append(f"device {device.id}: address {address:#014x} is already "
                                    f"{self.devices[address].device_id}'s")
                    continue
                self.devices[address] = by_id[device.id] = _Device(
                    device.id, address, DeviceAvailability(device.id, f"bus:{bus.id}", online_after))
            else:
                components.append((device, options))
        mapped: dict[tuple[str, int, int], str] = {}
        for device, options in components:
            uitd, component = str(options.uitd), str(options.component)
            system, _, part = component.partition("-")
            if uitd not in by_id:
                problems.append(f"device {device.id}: options.uitd {uitd!r} is not a transmission device on bus {bus.id}")
            elif not (system.isdigit() and part.isdigit()):
                problems.append(f"device {device.id}: options.component {component!r} must be "
                                "'<system address>-<component address>', e.g. '1-2017'")
            else:
                mapped[(uitd, int(system), int(part))] = device.id
        if problems:
            raise ConfigError(f"bus {bus.id}: {len(problems)} problem(s)", problems)
        self.state = PanelState(bus.id, mapped, tz=self.tz)
        self._fingerprint = hashlib.sha256(json.dumps(
            [bus.model_dump(mode="json"), [d.model_dump(mode="json") for d in devices]], sort_keys=True,
        ).encode()).hexdigest()[:16]
        self._handover = Handover()
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._unknown: set[int] = set()
        self._fault_events: dict[tuple[str, str], tuple[float, int]] = {}
        self._server: asyncio.Server | None = None
        self.port: int | None = None  # the port actually listened on (bus.port, or the OS's pick for 0)
        self.garbage_bytes = 0
        self.corrupt_frames = 0
        self.confirmed = 0
        self.denied = 0
        self.dropped_idle = 0
        self.listening = asyncio.Event()
        self._waiting_readings: list[Reading] = []
        self._waiting_events: list[Event] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self.deliveries = 0
        self.sink_errors = 0

    # ------------------------------------------------------------------ Source protocol

    @property
    def name(self) -> str:
        return f"bus:{self.bus.id}"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    async def run(self, sink: Sink) -> None:
        self._server = await asyncio.start_server(self._serve, self.bus.host, self.bus.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("%s: listening on %s:%s", self.name, self.bus.host, self.port)
        self.listening.set()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._handover.run(sink), name=f"{self.name}:handover")
                tg.create_task(self._deliver(sink), name=f"{self.name}:deliver")
                tg.create_task(self._availability(), name=f"{self.name}:availability")
        finally:
            # Hang up rather than cancel: a connection task that ends by cancellation makes asyncio's
            # stream callback log a traceback (Python 3.11); a closed socket ends its read loop cleanly.
            self._server.close()
            for writer in list(self._connections.values()):
                writer.close()
            if self._connections:
                _, stuck = await asyncio.wait(list(self._connections), timeout=2.0)
                for task in stuck:
                    task.cancel()
            self.listening.clear()
            await self._handover.flush(sink, timeout=1.0)

    # ------------------------------------------------------------------ connections

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= self.bus.max_connections:
            writer.close()
            return
        self._connections[task] = writer
        peer = writer.get_extra_info("peername")
        conn = _Connection(writer)
        buf = bytearray()
        try:
            while True:
                try:
                    async with asyncio.timeout(self.bus.idle_timeout_s):
                        data = await reader.read(_READ_SIZE)
                except TimeoutError:
                    self.dropped_idle += 1
                    log.warning("%s: %s (%s) silent for %g s, connection dropped", self.name,
                                conn.device.device_id if conn.device else "unidentified device", peer,
                                self.bus.idle_timeout_s)
                    return
                if not data:
                    return
                buf += data
                if len(buf) > _MAX_BUFFER:
                    self.garbage_bytes += len(buf) - _MAX_BUFFER
                    del buf[: len(buf) - _MAX_BUFFER]
                await self._answer_frames(buf, conn)
                await writer.drain()
        except (ConnectionError, OSError) as exc:
            log.info("%s: connection from %s lost: %s", self.name, peer, exc)
        finally:
            self._connections.pop(task, None)
            if conn.device is not None:
                conn.device.connected -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer_frames(self, buf: bytearray, conn: _Connection) -> None:
        """Answer every complete frame at the front of ``buf`` (removed from it); a partial one waits for more bytes."""
        while True:
            scan = codec.scan_frame(bytes(buf))
            self.garbage_bytes += scan.garbage
            if scan.verdict is Verdict.OK:
                del buf[: scan.skipped + scan.length]
                frame: codec.Frame = scan.frame
                known = self.devices.get(frame.source)
                if known is not None and known is not conn.device:
                    self._identified(conn, known, frame)
                reply = await self._frame(frame, known)
                if reply is not None:
                    conn.writer.write(reply)
                if known is not None:
                    known.frames += 1
                    known.heard = True
                    known.last_frame_mono = asyncio.get_running_loop().time()
                continue
            if scan.verdict is Verdict.CORRUPT:
                raw = bytes(buf[scan.skipped : scan.skipped + scan.length])
                del buf[: scan.skipped + scan.length]
                conn.writer.write(self._corrupt(raw, scan.reason, conn.device))
                continue
            del buf[: scan.skipped]
            return

    def _identified(self, conn: _Connection, device: _Device, frame: codec.Frame) -> None:
        """The connection now speaks for ``device`` (its first frame, or a new source address); time sync if on."""
        if conn.device is not None:
            conn.device.connected -= 1
        conn.device = device
        device.connected += 1
        if self.bus.time_sync:
            conn.serial += 1
            conn.writer.write(codec.time_sync(conn.serial, self.bus.address, frame.source, self._local_now()))

    async def _frame(self, frame: codec.Frame, device: _Device | None) -> bytes | None:
        """Handle one well-formed frame; returns our answer (confirm / deny) or ``None`` for none."""
        if frame.command in (codec.CONFIRM, codec.DENY):
            return None  # the device's answer to our control frame
        if device is None:
            self.denied += 1
            if frame.source not in self._unknown:
                self._unknown.add(frame.source)
                self._handover.put_events([Event(
                    code="gb26875.unknown_device", ts=self.clock.now(), severity=Severity.WARNING,
                    **say("gb26875.unknown_device", address=f"{frame.source:012X}"),
                    data={"bus": self.bus.id, "address": f"{frame.source:012X}"},
                )])
            return codec.deny(frame, source=self.bus.address, when=self._local_now())
        if frame.command not in (codec.SEND_DATA, codec.RESPONSE):
            device.denied += 1
            self.denied += 1
            return codec.deny(frame, source=self.bus.address, when=self._local_now())
        try:
            _, objects = codec.decode_objects(frame.data)
        except FrameError as exc:
            device.corrupt_frames += 1
            self.corrupt_frames += 1
            self._fault_event(device.device_id, "gb26875.corrupt_frame", exc.message, exc.reason)
            device.denied += 1
            self.denied += 1
            return codec.deny(frame, source=self.bus.address, when=self._local_now())
        if len(self._waiting_readings) + len(self._waiting_events) >= MAX_WAITING:
            device.denied += 1
            self.denied += 1
            return codec.deny(frame, source=self.bus.address, when=self._local_now())
        ts = self.clock.now()
        readings, events = self.state.apply(device.device_id, objects, ts)
        if readings or events:
            try:
                await self._submit(readings, events)
            except Exception as exc:  # the store refused: the device keeps the frame and resends it
                log.warning("%s: %s's frame %d not stored (%s); denied", self.name, device.device_id, frame.serial, exc)
                device.denied += 1
                self.denied += 1
                return codec.deny(frame, source=self.bus.address, when=self._local_now())
        self.confirmed += 1
        return codec.confirm(frame, source=self.bus.address, when=self._local_now())

    def _submit(self, readings: list[Reading], events: list[Event]) -> asyncio.Future[None]:
        """Queue one frame's records for the next delivery; the future resolves once they are stored."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting_readings.extend(readings)
        self._waiting_events.extend(events)
        self._waiters.append(future)
        self._wake.set()
        return future

    async def _deliver(self, sink: Sink) -> None:
        """Everything waiting goes in one ``sink.readings`` and one ``sink.events`` call (group commit)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            readings, self._waiting_readings = self._waiting_readings, []
            events, self._waiting_events = self._waiting_events, []
            waiters, self._waiters = self._waiters, []
            try:
                if readings:
                    await sink.readings(readings)
                if events:
                    await sink.events(events)
            except asyncio.CancelledError:
                for waiter in waiters:  # their frames are denied; the connections end as the source stops
                    if not waiter.done():
                        waiter.set_exception(ConnectionAbortedError("the gateway is stopping"))
                raise
            except Exception as exc:
                self.sink_errors += 1
                log.exception("%s: the sink refused %d readings and %d events", self.name, len(readings), len(events))
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(exc)
                continue
            self.deliveries += 1
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _corrupt(self, raw: bytes, reason: str, device: _Device | None) -> bytes:
        """Count a corrupt frame and deny it with the serial number its header carries."""
        self.corrupt_frames += 1
        subject = device.device_id if device else None
        if device is not None:
            device.corrupt_frames += 1
        self._fault_event(subject, "gb26875.corrupt_frame", f"corrupt frame ({reason}): {raw[:40].hex(' ')}", reason)
        self.denied += 1
        serial = int.from_bytes(raw[2:4], "little") if len(raw) >= 4 else 0
        source = int.from_bytes(raw[12:18], "little") if len(raw) >= 18 else 0
        return codec.encode_frame(serial, codec.DENY, self.bus.address, source, when=self._local_now())

    def _fault_event(self, device_id: str | None, code: str, error: str, reason: str) -> None:
        """First fault of a kind per device at once; then at most one per interval, with a count."""
        now = asyncio.get_running_loop().time()
        key = (device_id or "", code)
        last, suppressed = self._fault_events.get(key, (None, 0))
        if last is not None and now - last < FAULT_EVENT_INTERVAL_S:
            self._fault_events[key] = (last, suppressed + 1)
            return
        self._fault_events[key] = (now, 0)
        self._handover.put_events([Event(code=code, ts=self.clock.now(), device_id=device_id, severity=Severity.WARNING,
                                       data={"bus": self.bus.id, "reason": reason, "error": error,
                                             "suppressed": suppressed},
                                       **say("gb26875.corrupt_frame"))])

    def _local_now(self) -> datetime:
        return self.clock.now().astimezone(self.tz).replace(tzinfo=None)

    # ------------------------------------------------------------------ availability

    async def _availability(self) -> None:
        """One attempt per device per ``idle_timeout_s`` window: heard is a success, silence a failure."""
        while True:
            await asyncio.sleep(self.bus.idle_timeout_s)
            ts = self.clock.now()
            for device in self.devices.values():
                if device.heard:
                    device.heard = False
                    status = device.availability.up(ts)
                    if status is not None:
                        self._handover.put_status(status)
                else:
                    why = "connected but silent" if device.connected else "not connected"
                    self._handover.put_status(device.availability.down(
                        ts, f"no frame for {self.bus.idle_timeout_s:g} s ({why})"))

    # ------------------------------------------------------------------ for the panel and tests

    @property
    def stats(self) -> dict[str, Any]:
        return {
            "bus": self.bus.id, "kind": self.bus.kind, "port": self.port, "connections": len(self._connections),
            "confirmed": self.confirmed, "denied": self.denied, "corrupt_frames": self.corrupt_frames,
            "garbage_bytes": self.garbage_bytes, "dropped_idle": self.dropped_idle, "deliveries": self.deliveries,
            "sink_errors": self.sink_errors,
            "devices": {d.device_id: {"connected": d.connected > 0, "frames": d.frames, "denied": d.denied,
                                      "corrupt_frames": d.corrupt_frames} for d in self.devices.values()},
        }


def build(bus: object, devices: list[DeviceConfig], config: EstateConfig) -> Gb26875Source:
    """Registry entry point for a ``gb26875`` bus."""
    if not isinstance(bus, Gb26875BusConfig):
        raise ConfigError(f"the GB/T 26875 driver cannot serve a bus of kind {getattr(bus, 'kind', type(bus).__name__)!r}")
    return Gb26875Source(bus, devices, offline_after=config.thresholds.offline_after_failures,
                         online_after=config.thresholds.online_after_successes, timezone=config.estate.timezone)


def probe_panel_device(bus: Gb26875BusConfig, device: DeviceConfig, running_sources: Sequence[object] = ()) -> DeviceProbe:
    """The panel's "test device" for a transmission device: is it connected, and what did it send this run.

    The centre cannot ask it to answer on demand (it is the client).
    """
    source = next((s for s in running_sources if isinstance(s, Gb26875Source) and s.bus.id == bus.id), None)
    if source is None:
        return DeviceProbe(device.id, ok=False, error=f"bus {bus.id} is not running: no device can connect")
    uitd = device.options.get("uitd", device.id)
    stats = source.stats["devices"].get(str(uitd))
    if stats is None:
        return DeviceProbe(device.id, ok=False, error=f"{uitd} is not a transmission device on bus {bus.id}")
    values = tuple(ProbeValue(k, v) for k, v in stats.items() if k != "connected")
    if not stats["connected"]:
        return DeviceProbe(device.id, ok=False, values=values, error=f"{uitd} is not connected to port {source.port}")
    return DeviceProbe(device.id, ok=True, values=values)
