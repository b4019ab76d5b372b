"""DL/T 645, CJ/T 188 and GB/T 26875.3 against their simulators, through the real drivers.

    python bench/protocols_bench.py [--quick] [--parts dlt645,cjt188,shared,gb26875]

1. **dlt645**: four DL/T 645-2007 meters on one simulated 2,400-baud 8E1 line (socat pty; the simulator
   keeps wire time: every character takes 11 bits at 2,400 baud, the meter answers after the
   inter-frame silence), each read for one data item (forward active energy) as fast as the line
   allows. Meters read per second against the wire limit from the frame sizes (wake-up preamble,
   request, reply, two silences): ``dlt645_wire_efficiency_pct``.
2. **cjt188**: the same for four CJ/T 188 water meters (901F read data) on a 2,400-baud 8E1 line.
3. **gb26875**: a gateway (the daemon's own ``edge.app.Gateway``: store, rules, alarm manager) with 20
   transmission devices connected over TCP; 200 fire states sent (10 rounds, the 20 devices at once),
   each for its own component. Latency from just before the device writes its frame to the moment
   the alarm manager returns from committing the raised alarm record; p99 over the 200:
   ``gb26875_alarm_latency_ms``.

4. **shared**: one line shared by a DL/T 645 bus (two meters, 9,600 baud) and a Modbus RTU bus (two
   pressure transmitters, 11 registers each, 19,200 baud), both ``shared_line`` and flat out, against
   the combined line simulator (``simulators.modbus.shared_line``). The port is switched between the
   two settings for almost every transaction. Busy wire time (each transaction's own frames and
   silences) per second: ``shared_line_wire_efficiency_pct``.

Prints ``BENCH <name> <value> <unit> [target=]`` lines; never fails on speed. About 50 s (``--quick``: 20 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from drivers.cjt188 import codec as cjt188
from drivers.cjt188.profile import load_profile as cjt188_profile
from drivers.cjt188.source import Cjt188Source
from drivers.dlt645 import codec as dlt645
from drivers.dlt645.profile import load_profile as dlt645_profile
from drivers.dlt645.source import Dlt645Source
from drivers.gb26875 import codec as gb
from drivers.gb26875.source import Gb26875Source
from drivers.modbus.codec import char_time_s, inter_frame_silence_s, rtu_transaction_wire_s
from drivers.modbus.driver import ModbusSource
from edge.app import Gateway
from edge.config.buses import Cjt188BusConfig, Dlt645BusConfig, ModbusRtuBusConfig
from edge.config.devices import DeviceConfig
from edge.records import DeviceStatus, Event, Reading
from edge.rules import TransitionKind
from simulators.cjt188.meter import SimMeter as WaterMeter
from simulators.dlt645.line import MeterLineServer
from simulators.dlt645.meter import SimMeter as PowerMeter
from simulators.gb26875 import story
from simulators.gb26875.device import SimUitd
from simulators.modbus.shared_line import SharedLineServer, modbus_device

BAUD = 2400
METERS = 4


def bench(name: str, value: float, unit: str, **extra: float | str) -> None:
    tail = " ".join(f"{k}={v}" for k, v in extra.items())
    print(f"BENCH {name} {value:.4g} {unit} {tail}".rstrip(), flush=True)


class CountingSink:
    """The stage boundary, counted (the meter benches measure the line, not the store)."""

    def __init__(self) -> None:
        self.readings_in = 0

    async def readings(self, readings: Sequence[Reading]) -> None:
        self.readings_in += len(readings)

    async def events(self, events: Sequence[Event]) -> None:
        return None

    async def device_status(self, status: DeviceStatus) -> None:
        return None


def meter(device_id: str, bus: str, profile: str, address: str, profiles_dir: Path | None = None) -> DeviceConfig:
    return DeviceConfig(id=device_id, name=device_id, bus=bus, profile=profile, category="other",
                        location={"building": "bench"}, poll_interval_s=0.05, timeout_s=1.0, retries=0,
                        options={"address": address})


async def flat_out(source: Any, seconds: float) -> int:
    """Successful polls in ``seconds`` after a warm-up, the line running flat out."""
    sink = CountingSink()
    task = asyncio.create_task(source.run(sink))
    await asyncio.sleep(1.0)
    before = sum(d["ok"] for d in source.stats["devices"].values())
    await asyncio.sleep(seconds)
    after = sum(d["ok"] for d in source.stats["devices"].values())
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return after - before


def wire_s(request: bytes, reply: bytes) -> float:
    """Least time one transaction occupies the line: both frames' characters and the two silences."""
    return (len(request) + len(reply)) * char_time_s(BAUD, 8, "E", 1) + 2 * inter_frame_silence_s(BAUD, 8, "E", 1)


async def dlt645_part(tmp: Path, seconds: float) -> None:
    profiles = tmp / "dlt645_profiles"
    profiles.mkdir()
    (profiles / "energy_only.yaml").write_text(yaml.safe_dump({
        "model": "bench meter", "source": "bench", "version": 2007,
        "points": {"energy_import": {"di": 0x00010000, "format": "XXXXXX.XX", "unit": "kWh", "kind": "counter"}},
    }), encoding="utf-8")
    profile = dlt645_profile("energy_only", [str(profiles)])
    addresses = [f"{i + 1:012d}" for i in range(METERS)]
    server = MeterLineServer(str(tmp / "dlt645"), [PowerMeter(a, profile) for a in addresses], dlt645.scan_frame,
                             baudrate=BAUD, parity="E")
    await server.start()
    try:
        bus = Dlt645BusConfig(kind="dlt645", id="m", port=str(tmp / "dlt645"), baudrate=BAUD,
                              profiles_dir=str(profiles))
        source = Dlt645Source(bus, [meter(f"m{i}", "m", "energy_only", a) for i, a in enumerate(addresses)])
        reads = await flat_out(source, seconds)
    finally:
        await server.stop()
    request = dlt645.read_request(addresses[0], 0x00010000)
    reply = dlt645.read_reply(addresses[0], 0x00010000, b"\x00" * 4)
    limit = seconds / wire_s(request, reply)
    bench("dlt645_reads_per_s", reads / seconds, "reads/s")
    bench("dlt645_wire_limit_reads_per_s", limit / seconds, "reads/s")
    bench("dlt645_wire_efficiency_pct", 100 * reads / limit, "%", target=85)


async def cjt188_part(tmp: Path, seconds: float) -> None:
    profile = cjt188_profile("generic_water")
    addresses = [f"{i + 1:014d}" for i in range(METERS)]
    server = MeterLineServer(str(tmp / "cjt188"), [WaterMeter(a, profile) for a in addresses], cjt188.scan_frame,
                             baudrate=BAUD, parity="E")
    await server.start()
    try:
        bus = Cjt188BusConfig(kind="cjt188", id="w", port=str(tmp / "cjt188"), baudrate=BAUD)
        source = Cjt188Source(bus, [meter(f"w{i}", "w", "generic_water", a) for i, a in enumerate(addresses)])
        reads = await flat_out(source, seconds)
    finally:
        await server.stop()
    request = cjt188.read_data_request(0x10, addresses[0], 1)
    reply = cjt188.read_data_reply(0x10, addresses[0], 1, b"\x00" * 19)
    limit = seconds / wire_s(request, reply)
    bench("cjt188_reads_per_s", reads / seconds, "reads/s")
    bench("cjt188_wire_limit_reads_per_s", limit / seconds, "reads/s")
    bench("cjt188_wire_efficiency_pct", 100 * reads / limit, "%", target=85)


class TimedAlarms:
    """Wraps the gateway's alarm manager: when did the commit of each raised alarm return?"""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.committed: dict[str, float] = {}
        self.all = asyncio.Event()
        self.expected = 0

    async def apply(self, transitions: Sequence[Any]) -> Any:
        out = await self.inner.apply(transitions)
        now = time.perf_counter()
        for t in transitions:
            if t.code == "fire.alarm" and t.kind is TransitionKind.RAISE:
                self.committed[t.subject] = now
        if len(self.committed) >= self.expected:
            self.all.set()
        return out


def _estate(tmp: Path, devices: int) -> tuple[Path, Path]:
    doc = {
        "estate": {"id": "EST-BENCH", "name": "基准花园", "gateway_id": "GW-BENCH", "timezone": "Asia/Shanghai"},
        "platform": {"url": "https://127.0.0.1:9", "client_id": "gateway", "client_secret": "SECRET", "enabled": False},
        "store": {"path": str(tmp / "edge.db"), "evidence_dir": str(tmp / "evidence")},
        "panel": {"enabled": False},
        "buses": [{"kind": "gb26875", "id": "fire", "port": 0, "idle_timeout_s": 300}],
        "devices": [{"id": f"UITD-{i}", "name": f"传输装置{i}", "bus": "fire", "category": "other",
                     "location": {"building": f"{i + 1}栋"}, "options": {"address": 0x100 + i}} for i in range(devices)],
    }
    config = tmp / "estate.yaml"
    config.write_text(yaml.safe_dump(doc, allow_unicode=True).replace("SECRET", "!secret platform_client_secret"),
                      encoding="utf-8")
    secrets = tmp / "secrets.yaml"
    secrets.write_text("platform_client_secret: bench\n", encoding="utf-8")
    secrets.chmod(0o600)
    return config, secrets


async def gb26875_part(tmp: Path, rounds: int, devices: int = 20) -> None:
    logging.getLogger("edge").setLevel(logging.WARNING)
    gateway = Gateway(*_estate(tmp, devices))
    task = asyncio.create_task(gateway.run(install_signals=False))
    try:
        source: Gb26875Source | None = None
        async with asyncio.timeout(30):
            while source is None:
                if task.done():
                    task.result()
                status = gateway.supervisor.sources.get("bus:fire") if gateway.supervisor else None
                found = status.source if status is not None else None
                source = found if isinstance(found, Gb26875Source) and found.port else None
                await asyncio.sleep(0.02)
        assert gateway.pipeline is not None and source.port is not None
        timed = TimedAlarms(gateway.pipeline.alarms)
        timed.expected = rounds * devices
        gateway.pipeline.alarms = timed
        uitds = [SimUitd("127.0.0.1", source.port, 0x100 + i) for i in range(devices)]
        for uitd in uitds:
            await uitd.connect()
        sent: dict[str, float] = {}

        async def fire(i: int, r: int) -> None:
            part = 1000 + r
            state = gb.ComponentState(1, 1, story.SMOKE_DETECTOR, part, story.NORMAL | story.FIRE, f"{i + 1}栋 感烟{r}", None)
            sent[f"UITD-{i}/1-{part}"] = time.perf_counter()
            assert await uitds[i].send([state]) == gb.CONFIRM

        for r in range(rounds):
            await asyncio.gather(*(fire(i, r) for i in range(devices)))
            await asyncio.sleep(0.1)
        async with asyncio.timeout(30):
            await timed.all.wait()
        for uitd in uitds:
            await uitd.close()
    finally:
        gateway.request_stop()
        await asyncio.wait_for(task, 60)
    latencies = sorted((timed.committed[k] - sent[k]) * 1000 for k in sent)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    bench("gb26875_alarm_latency_p50_ms", latencies[len(latencies) // 2], "ms")
    bench("gb26875_alarm_latency_ms", p99, "ms", target=500)


async def shared_part(tmp: Path, seconds: float) -> None:
    meter_baud, modbus_baud = 9600, 19200
    profiles = tmp / "shared_profiles"
    profiles.mkdir()
    (profiles / "energy_only.yaml").write_text(yaml.safe_dump({
        "model": "bench meter", "source": "bench", "version": 2007,
        "points": {"energy_import": {"di": 0x00010000, "format": "XXXXXX.XX", "unit": "kWh", "kind": "counter"}},
    }), encoding="utf-8")
    profile = dlt645_profile("energy_only", [str(profiles)])
    addresses = [f"{i + 1:012d}" for i in range(2)]
    port = str(tmp / "shared")
    registers = {"unit_code": 0, "decimals": 3, "range_zero": 0, "range_full": 1.6}
    modbus = {u: modbus_device(u, "generic_rs485_pressure", registers=registers) for u in (1, 2)}
    server = SharedLineServer(port, [PowerMeter(a, profile) for a in addresses], modbus, meter_baudrate=meter_baud,
                              meter_parity="N", modbus_baudrate=modbus_baud, modbus_parity="N")
    await server.start()
    try:
        meters = Dlt645Source(Dlt645BusConfig(kind="dlt645", id="m", port=port, baudrate=meter_baud, parity="N",
                                              profiles_dir=str(profiles), shared_line=True),
                              [meter(f"m{i}", "m", "energy_only", a) for i, a in enumerate(addresses)])
        pumps = ModbusSource(
            ModbusRtuBusConfig(kind="modbus_rtu", id="p", port=port, baudrate=modbus_baud, shared_line=True),
            [DeviceConfig(id=f"p{u}", name=f"p{u}", bus="p", profile="generic_rs485_pressure", category="fire_pressure",
                          location={"building": "bench"}, unit_id=u, poll_interval_s=0.05, timeout_s=1.0, retries=0)
             for u in (1, 2)])
        sink = CountingSink()
        tasks = [asyncio.create_task(s.run(sink)) for s in (meters, pumps)]
        await asyncio.sleep(1.0)

        def ok(source: Any) -> int:
            return sum(d["ok"] for d in source.stats["devices"].values())

        before = ok(meters), ok(pumps), server.stats["framing_errors"]
        await asyncio.sleep(seconds)
        after = ok(meters), ok(pumps), server.stats["framing_errors"]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await server.stop()
    meter_reads, modbus_reads = after[0] - before[0], after[1] - before[1]
    request = dlt645.read_request(addresses[0], 0x00010000)
    reply = dlt645.read_reply(addresses[0], 0x00010000, b"\x00" * 4)
    meter_wire = (len(request) + len(reply)) * char_time_s(meter_baud, 8, "N", 1) + 2 * inter_frame_silence_s(
        meter_baud, 8, "N", 1)
    busy = meter_reads * meter_wire + modbus_reads * rtu_transaction_wire_s(11, modbus_baud)
    bench("shared_line_meter_reads_per_s", meter_reads / seconds, "reads/s")
    bench("shared_line_modbus_reads_per_s", modbus_reads / seconds, "reads/s")
    bench("shared_line_framing_errors", after[2] - before[2], "count", target=0)
    bench("shared_line_wire_efficiency_pct", 100 * busy / seconds, "%", target=85)


async def main(parts: list[str], quick: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="protocols-bench-") as tmp:
        if "dlt645" in parts:
            await dlt645_part(Path(tmp), 4.0 if quick else 10.0)
        if "cjt188" in parts:
            await cjt188_part(Path(tmp), 4.0 if quick else 10.0)
        if "shared" in parts:
            await shared_part(Path(tmp), 4.0 if quick else 10.0)
        if "gb26875" in parts:
            (Path(tmp) / "gb").mkdir()
            await gb26875_part(Path(tmp) / "gb", 10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", default="dlt645,cjt188,shared,gb26875")
    args = parser.parse_args()
    asyncio.run(main(args.parts.split(","), args.quick))
