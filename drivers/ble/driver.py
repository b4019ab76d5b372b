"""The BLE source: one per ``ble`` bus (one adapter, one scanner), implementing ``edge.sources.Source``.

What it delivers to the sink:

* ``sink.readings``: the measurements of each configured sensor's advertisements (matched by MAC),
  plus ``rssi_dbm``; a sensor repeats its advertisement every few seconds, so a set is delivered
  only when a value changed or ``min_interval_s`` passed since the last one (RSSI alone changing
  does not count);
* ``sink.device_status``: online with a sensor's first decodable advertisement, offline after
  ``offline_after_s`` without one (device option, else bus), and for every sensor while the
  adapter cannot scan (no adapter, BlueZ down), with the adapter's error.

Advertisements that do not decode are counted per sensor with the error (``stats``), never raise.
Every advertiser heard, configured or not, is kept (bounded) in the scan list for the panel's
"BLE scan" view with its RSSI and format.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from drivers.ble.codec import AdvertisementError, decode
from drivers.ble.scanner import Advertisement, BleakPassiveScanner, Scanner
from drivers.push import PushDelivery
from edge.availability import DeviceAvailability, watch_silence
from edge.backoff import Backoff
from edge.clock import Clock, SystemClock
from edge.config import EstateConfig
from edge.config.buses import BleBusConfig
from edge.config.device_options import BleDeviceOptions, parse_options
from edge.config.devices import DeviceConfig
from edge.errors import ConfigError
from edge.records import Reading
from edge.sources import Sink
from edge.tasks import retry_after

log = logging.getLogger(__name__)

SCAN_LIST_MAX = 500
RESTART_MAX_S = 60.0

ScannerFactory = Callable[[BleBusConfig], Scanner]


@dataclass(slots=True)
class _Sensor:
    config: DeviceConfig
    mac: str
    format: str
    offline_after_s: float
    availability: DeviceAvailability
    last_seen: float = 0.0
    advertisements: int = 0
    sets: int = 0
    errors: int = 0
    last_error: str | None = None
    last_values: tuple[tuple[str, float], ...] = ()
    last_emit: float = float("-inf")
    rssi: int | None = None
    counter: int | None = None
    last_format: str | None = None

    @property
    def online(self) -> bool | None:
        return self.availability.online

    def as_dict(self) -> dict[str, Any]:
        return {"mac": self.mac, "format": self.last_format or self.format, "online": self.online, "rssi": self.rssi,
                "advertisements": self.advertisements, "reading_sets": self.sets, "errors": self.errors,
                "last_error": self.last_error, "counter": self.counter,
                "offline_after_s": self.offline_after_s}


def _default_scanner(bus: BleBusConfig) -> Scanner:
    """The adapter's passive scanner, or the bus's recording replayed in a loop at its recorded pace."""
    if bus.replay is not None:
        from drivers.ble.replay import ReplayScanner, load_recording

        return ReplayScanner(load_recording(bus.replay), speed=1.0, loops=None)
    return BleakPassiveScanner(bus.adapter, mode=bus.scanning_mode)


class BleSource:
    """Listens on one adapter for the configured sensors. Construct with ``build``."""

    def __init__(self, bus: BleBusConfig, devices: Sequence[DeviceConfig], *,
                 scanner_factory: ScannerFactory | None = None, clock: Clock | None = None) -> None:
        self.bus = bus
        self.clock = clock or SystemClock()
        self.scanner_factory = scanner_factory or _default_scanner
        problems: list[str] = []
        self.sensors: dict[str, _Sensor] = {}
        self._by_mac: dict[str, _Sensor] = {}
        for device in devices:
            if not device.enabled:
                continue
            try:
                sensor = self._sensor(device)
            except ConfigError as exc:
                problems.extend(exc.problems)  # each names the device
                continue
            if sensor.mac in self._by_mac:
                problems.append(f"device {device.id}: MAC {sensor.mac} is already {self._by_mac[sensor.mac].config.id}")
                continue
            self.sensors[device.id] = self._by_mac[sensor.mac] = sensor
        if problems:
            raise ConfigError(f"bus {bus.id}: {len(problems)} problem(s)", problems)
        self._fingerprint = hashlib.sha256(json.dumps(
            [bus.model_dump(mode="json"), [d.model_dump(mode="json") for d in devices]], sort_keys=True, default=str,
        ).encode()).hexdigest()[:16]
        self._delivery = PushDelivery(self.name)
        self.scan_list: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.scanning = False
        self.scanner_errors = 0
        self.last_error: str | None = None
        self.advertisements = 0

    def _sensor(self, device: DeviceConfig) -> _Sensor:
        options = parse_options(BleDeviceOptions, device.id, device.options)  # the config's own rule
        offline = options.offline_after_s if options.offline_after_s is not None else self.bus.offline_after_s
        mac, fmt = options.mac, options.format
        # Reported online once per recovery (online_after=1): a sensor advertises every few seconds.
        return _Sensor(device, mac, fmt, float(offline), DeviceAvailability(device.id, self.name, online_after=1))

    # ------------------------------------------------------------------ Source protocol

    @property
    def name(self) -> str:
        return f"bus:{self.bus.id}"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    async def run(self, sink: Sink) -> None:
        now = self.clock.monotonic()
        for sensor in self.sensors.values():
            sensor.last_seen = now
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._scan_forever(), name=f"{self.name}:scan")
                tg.create_task(self._delivery.run(sink), name=f"{self.name}:deliver")
                tg.create_task(watch_silence(self.clock, self.sensors.values(), self._silent), name=f"{self.name}:silence")
        finally:
            await self._delivery.flush(sink)

    # ------------------------------------------------------------------ scanning

    async def _scan_forever(self) -> None:
        """Scan; when the adapter fails, report every sensor offline and retry with jittered backoff."""
        backoff = Backoff(1.0, RESTART_MAX_S, jitter="equal")
        while True:
            try:
                async with self.scanner_factory(self.bus) as scanner:
                    self.scanning = True
                    if self.last_error:
                        log.info("%s: scanning on %s again", self.name, self.bus.adapter)
                    self.last_error = None
                    backoff.reset()
                    async for adv in scanner.advertisements():
                        self.on_advertisement(adv)
                return  # a finite scanner (a replay) has ended
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # bleak, D-Bus and OS errors alike: the adapter is the problem
                self.scanner_errors += 1
                error = f"adapter {self.bus.adapter}: {type(exc).__name__}: {exc}"
                if self.last_error is None:
                    log.warning("%s: %s", self.name, error)
                self.last_error = error
                for sensor in self.sensors.values():
                    self._offline(sensor, f"BLE scanner: {error}")
            finally:
                self.scanning = False
            await retry_after(backoff.next_delay())

    def on_advertisement(self, adv: Advertisement) -> None:
        """Match, decode and queue one advertisement (synchronous; never raises)."""
        self.advertisements += 1
        sensor = self._by_mac.get(adv.address.upper())
        entry = self.scan_list.pop(adv.address, None) or {"address": adv.address, "count": 0}
        entry.update(rssi=adv.rssi, name=adv.local_name, last_seen=adv.ts.isoformat(), count=entry["count"] + 1,
                     device_id=sensor.config.id if sensor else None)
        self.scan_list[adv.address] = entry
        if len(self.scan_list) > SCAN_LIST_MAX:
            self.scan_list.popitem(last=False)
        try:
            decoded = decode(adv.service_data, adv.address)
        except AdvertisementError as exc:
            entry["error"] = str(exc)
            if sensor is not None:
                sensor.errors += 1
                sensor.last_error = str(exc)
            return
        if decoded is None:
            return
        entry["format"] = decoded.format
        if sensor is None:
            return
        if sensor.format != "auto" and decoded.format != sensor.format:
            sensor.errors += 1
            sensor.last_error = f"advertises {decoded.format}, configured {sensor.format}"
            return
        sensor.advertisements += 1
        sensor.rssi = adv.rssi
        sensor.counter = decoded.counter
        sensor.last_format = decoded.format
        if decoded.warnings:
            sensor.last_error = decoded.warnings[0]
        mono = self.clock.monotonic()
        sensor.last_seen = mono
        status = sensor.availability.up(adv.ts)
        if status is not None:
            self._delivery.pending.statuses.append(status)
            self._delivery.wake()
        values = tuple((m.point, m.value) for m in decoded.measurements)
        if values == sensor.last_values and mono - sensor.last_emit < self.bus.min_interval_s:
            return  # a repeat of the same measurement
        sensor.last_values = values
        sensor.last_emit = mono
        sensor.sets += 1
        device_id = sensor.config.id
        self._delivery.pending.readings.extend(Reading(device_id, m.point, m.value, m.unit, adv.ts) for m in decoded.measurements)
        self._delivery.pending.readings.append(Reading(device_id, "rssi_dbm", float(adv.rssi), "", adv.ts))
        self._delivery.wake()

    def _offline(self, sensor: _Sensor, error: str) -> None:
        sensor.last_error = error
        self._delivery.pending.statuses.append(sensor.availability.down(self.clock.now(), error))
        self._delivery.wake()

    def _silent(self, sensor: _Sensor, silent: float) -> None:
        self._offline(sensor, f"no advertisement for {silent:.0f} s (limit {sensor.offline_after_s:g} s)")

    # ------------------------------------------------------------------ for the panel

    @property
    def stats(self) -> dict[str, Any]:
        return {
            "bus": self.bus.id,
            "kind": self.bus.kind,
            "adapter": self.bus.adapter,
            "scanning": self.scanning,
            "scanner_errors": self.scanner_errors,
            "last_error": self.last_error,
            "advertisements": self.advertisements,
            "sink_errors": self._delivery.sink_errors,
            "devices": {device_id: s.as_dict() for device_id, s in self.sensors.items()},
            "scan_list": sorted(self.scan_list.values(), key=lambda e: -int(e["rssi"])),
        }


def build(bus: object, devices: list[DeviceConfig], config: EstateConfig) -> BleSource:
    """Registry entry point: a source for one ``ble`` bus (adapter)."""
    if not isinstance(bus, BleBusConfig):
        raise ConfigError(f"the BLE driver cannot serve a bus of kind {getattr(bus, 'kind', type(bus).__name__)!r}")
    return BleSource(bus, devices)
