"""One simulated RS-485 line with DL/T 645 meters *and* Modbus RTU devices on it (a socat pty pair).

    python -m simulators.modbus.shared_line --link /tmp/edge/shared-485 \
        --meter 665544332211:dtsu666_dlt645 --meter-baudrate 9600 --meter-parity E \
        --modbus 1:generic_rs485_pressure --modbus 2:generic_rs485_level --modbus-baudrate 9600 --silent 2

Prints one line per device, then ``READY``. What the wire carries is dispatched by how a frame
starts, as the devices on a real line tell them apart: a request whose first 8 bytes carry a
valid Modbus CRC is a Modbus RTU read for the slave it names; wake-up bytes (0xFE) or 0x68 start a
DL/T 645 frame for the meters. (A Modbus slave id of 0x68 or 0xFE would be ambiguous on a real
line too; installers avoid them, and so does this simulator's command line.)

The wire model is the meter line's (``simulators.dlt645.line``): a frame occupies the wire for
its characters at *its own* protocol's baud rate and parity, an answer follows the inter-frame
silence and arrives when its last character would have. A Modbus request that follows the
previous frame by less than the Modbus devices' t3.5 is a framing error (counted, unanswered), as
on a real line where the devices cannot tell where the previous frame ended. Fault switches: a
meter's ``silent`` / ``corrupt`` / ``truncate`` / ``garbage``; a Modbus device's behaviour mode
(``offline``, ``corrupt``, ``short``, ``garbage``, ``exception``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from drivers.dlt645.codec import Verdict, scan_frame
from drivers.dlt645.profile import load_profile
from drivers.modbus.codec import (
    RTU_REQUEST_LENGTH,
    char_time_s,
    crc_ok,
    inter_frame_silence_s,
)
from drivers.modbus.profile import ProfileLibrary
from edge.errors import ConfigError
from simulators.dlt645.line import MeterLineServer, Responder
from simulators.modbus.device import SimClock, SimDevice
from simulators.modbus.scenario import SimDeviceSpec
from simulators.modbus.servers import _SILENCE_TOLERANCE, rtu_reply

_METER_START = (0xFE, 0x68)


class SharedLineServer(MeterLineServer):
    """DL/T 645 meters (``meters``) and Modbus RTU devices (``modbus``, by slave id) on one line."""

    def __init__(self, link: str, meters: Sequence[Responder], modbus: dict[int, SimDevice], *,
                 meter_baudrate: int = 9600, meter_parity: str = "E", modbus_baudrate: int = 9600,
                 modbus_parity: str = "N", bytesize: int = 8, stopbits: int = 1) -> None:
        super().__init__(link, meters, scan_frame, baudrate=meter_baudrate, parity=meter_parity, bytesize=bytesize,
                         stopbits=stopbits)
        self.modbus = modbus
        self.modbus_char_s = char_time_s(modbus_baudrate, bytesize, modbus_parity, stopbits)
        self.modbus_silence_s = inter_frame_silence_s(modbus_baudrate, bytesize, modbus_parity, stopbits)
        self.stats.update({"meter_requests": 0, "modbus_requests": 0})

    def _readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 4096)
        except OSError:
            return
        if not data:
            return
        now = asyncio.get_running_loop().time()
        self._buffer += data
        while self._buffer:
            buf = self._buffer
            if len(buf) >= RTU_REQUEST_LENGTH and crc_ok(buf[:RTU_REQUEST_LENGTH]):
                self._buffer = buf[RTU_REQUEST_LENGTH:]
                self._modbus_request(buf[:RTU_REQUEST_LENGTH], now)
                continue
            if buf[0] in _METER_START:
                scan = self.scanner(buf)
                if scan.verdict is Verdict.OK:
                    self._buffer = buf[scan.skipped + scan.length :]
                    self.stats["meter_requests"] += 1
                    self._request(scan.frame, scan.skipped + scan.length, now)
                    continue
                if scan.verdict is Verdict.CORRUPT:
                    self.stats["corrupt_requests"] += 1
                    self._buffer = buf[scan.skipped + scan.length :]
                    continue
                if scan.verdict is Verdict.NEED_MORE:
                    return
            if len(buf) < RTU_REQUEST_LENGTH:
                return  # perhaps the start of a Modbus request
            self.stats["crc_errors"] += 1  # neither protocol's frame: resynchronise one byte at a time
            self._buffer = buf[1:]

    def _modbus_request(self, frame: bytes, now: float) -> None:
        self.stats["requests"] += 1
        self.stats["modbus_requests"] += 1
        unit, fc = frame[0], frame[1]
        address, count = struct.unpack(">HH", frame[2:6])
        gap = now - self._wire_free
        request_end = max(now, self._wire_free) + RTU_REQUEST_LENGTH * self.modbus_char_s
        self._wire_free = request_end
        if gap < _SILENCE_TOLERANCE * self.modbus_silence_s:
            self.stats["framing_errors"] += 1  # the devices could not tell where the previous frame ended
            return
        device = self.modbus.get(unit)
        if device is None:
            return
        answer = device.answer(fc, address, count, now)
        reply = rtu_reply(unit, fc, answer)
        if reply is None:
            return
        done = request_end + self.modbus_silence_s + answer.delay + len(reply) * self.modbus_char_s
        self._wire_free = done
        loop = asyncio.get_running_loop()
        self._handles = [h for h in self._handles if not h.cancelled() and h.when() > now]
        self._handles.append(loop.call_at(done, self._write, reply))


def modbus_device(unit: int, profile: str, *, mode: str = "normal", model: dict[str, Any] | None = None,
                  registers: dict[str, float] | None = None, profiles: ProfileLibrary | None = None,
                  device_id: str | None = None) -> SimDevice:
    """A simulated Modbus device for the shared line (its clock starts now)."""
    if unit in _METER_START:
        raise ValueError(f"slave id {unit:#04x} starts DL/T 645 frames too; pick another")
    spec = SimDeviceSpec.model_validate({"id": device_id or f"unit{unit}", "profile": profile, "unit_id": unit,
                                         "model": model or {}, "registers": registers or {},
                                         "behaviour": {"mode": mode}})
    library = profiles or ProfileLibrary()
    clock = SimClock(datetime.now(UTC), 1.0, asyncio.get_running_loop().time())
    return SimDevice(spec, unit, spec.id, library.get(profile), clock, seed=0)


def main(argv: list[str] | None = None) -> int:
    from simulators.dlt645.__main__ import serve
    from simulators.dlt645.meter import SimMeter

    parser = argparse.ArgumentParser(prog="python -m simulators.modbus.shared_line",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--link", required=True, help="path of the gateway's end of the pty pair")
    parser.add_argument("--meter", action="append", default=[], help="ADDRESS:PROFILE of a DL/T 645 meter (repeatable)")
    parser.add_argument("--modbus", action="append", default=[], help="UNIT:PROFILE of a Modbus device (repeatable)")
    parser.add_argument("--meter-baudrate", type=int, default=9600)
    parser.add_argument("--meter-parity", choices=["N", "E", "O"], default="E")
    parser.add_argument("--modbus-baudrate", type=int, default=9600)
    parser.add_argument("--modbus-parity", choices=["N", "E", "O"], default="N")
    for switch in ("silent", "corrupt"):
        parser.add_argument(f"--{switch}", action="append", default=[], metavar="ADDRESS|UNIT")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    args = parser.parse_args(argv)
    if not args.meter and not args.modbus:
        parser.error("give at least one --meter or --modbus")

    async def run() -> None:
        meters: list[SimMeter] = []
        modbus: dict[int, SimDevice] = {}
        lines: list[str] = []
        for spec in args.meter:
            address, _, profile = spec.partition(":")
            meter = SimMeter(address.rjust(12, "0"), load_profile(profile or "generic_household", []))
            meter.silent = address in args.silent
            meter.corrupt = address in args.corrupt
            meters.append(meter)
            lines.append(f"dlt645 {args.link} {meter.address} {meter.profile.id}")
        for spec in args.modbus:
            unit_text, _, profile = spec.partition(":")
            mode = "offline" if unit_text in args.silent else "corrupt" if unit_text in args.corrupt else "normal"
            modbus[int(unit_text)] = modbus_device(int(unit_text), profile, mode=mode)
            lines.append(f"modbus_rtu {args.link} unit {int(unit_text)} {profile}")
        server = SharedLineServer(args.link, meters, modbus, meter_baudrate=args.meter_baudrate,
                                  meter_parity=args.meter_parity, modbus_baudrate=args.modbus_baudrate,
                                  modbus_parity=args.modbus_parity)
        await serve(server, lines, args.duration)

    try:
        asyncio.run(run())
    except (ConfigError, ValueError, KeyError) as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        print("\n".join(problems), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
