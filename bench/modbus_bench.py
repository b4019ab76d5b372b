"""Modbus acquisition against the simulator (in its own process), next to naive pymodbus loops in the same run.

    python bench/modbus_bench.py [--quick] [--parts tcp,neuron,rtu]

1. **tcp**: 2,000 simulated TCP devices (20 converter ports x 100 units, Acrel ADL400, 17 points in one
   88-register read) polled every 10 s by 20 ``modbus_tcp`` buses, through the real pipeline (normaliser,
   SQLite store, rule engine): reads/s achieved, p99 poll lag, CPU % of one core used by this process
   (the simulator's CPU is not counted). Next to it, a naive sequential pymodbus loop over the same
   devices: ``modbus_naive_reads_per_s``.
2. **neuron**: EMQX Neuron's own benchmark shape, 500 devices x 30 tags every 1 s (15,000 points/s),
   10 ports x 50 units, every reading committed to the store. Baseline: a bare pymodbus merged-read loop
   paced to the same 500 reads/s, measured in the same run.
3. **rtu**: one simulated 9,600-baud line (8 pressure transmitters, 11 registers per read) polled flat
   out: transactions/s next to the wire-time limit from frame sizes and baud rate; baseline: a plain
   sequential pymodbus serial loop on the same line.

Prints ``BENCH <name> <value> <unit> [baseline=] [target=]`` lines; the whole run takes about 100 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from drivers.modbus.codec import rtu_transaction_wire_s
from drivers.modbus.driver import ModbusSource
from edge.config.buses import ModbusRtuBusConfig, ModbusTcpBusConfig
from edge.config.devices import DeviceConfig
from edge.normalise import Normaliser
from edge.pipeline import Pipeline
from edge.rules import RuleEngine, RuleSpecs
from edge.rules.specs import DEFAULT_EVENT_ALARMS
from edge.store import Store

REPO = Path(__file__).resolve().parents[1]
BENCH30 = "bench_30_tags"


def bench(name: str, value: float, unit: str, **extra: float | str) -> None:
    tail = " ".join(f"{k}={v}" for k, v in extra.items())
    print(f"BENCH {name} {value:.4g} {unit} {tail}".rstrip(), flush=True)


def free_port_block(count: int) -> int:
    """First port of ``count`` consecutive free ports on 127.0.0.1."""
    for base in range(21000, 60000, 97):
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no block of free ports")


def write_bench_profile(directory: Path) -> None:
    points = "\n".join(
        f"  tag{i:02d}: {{address: {2 * i}, type: float32, unit: \"\"}}" for i in range(30)
    )
    (directory / f"{BENCH30}.yaml").write_text(
        "model: 30-tag benchmark device\nvendor: bench\ncategory: other\n"
        "source: bench/modbus_bench.py (Neuron's 30-tag benchmark shape; devices.md does not apply)\n"
        "function_code: 3\npoints:\n" + points + "\n",
        encoding="utf-8",
    )


class Simulator:
    """``python -m simulators.modbus`` in its own process."""

    def __init__(self, scenario: dict[str, Any], workdir: Path, profiles: Path) -> None:
        self.path = workdir / f"scenario-{id(self)}.yaml"
        self.path.write_text(json.dumps(scenario), encoding="utf-8")  # JSON is YAML
        self.profiles = profiles
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Simulator:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simulators.modbus", "--scenario", str(self.path), "--quiet",
            "--profiles-dir", str(self.profiles), cwd=REPO, stdout=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(60):
            while (line := await self.proc.stdout.readline()) and line.strip() != b"READY":
                pass
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


def dev(device_id: str, bus: str, profile: str, unit: int, period: float, **options: Any) -> DeviceConfig:
    return DeviceConfig(id=device_id, name=device_id, bus=bus, profile=profile, category="other",
                        location={"building": "bench"}, unit_id=unit, poll_interval_s=period, timeout_s=1.0,
                        retries=1, options=options)


class Gateway:
    """The gateway side: sources feeding the real pipeline (normaliser, store, rules)."""

    def __init__(self, sources: list[ModbusSource], db: Path) -> None:
        self.sources = sources
        self.db = db
        self.store = Store(db, maintenance_interval_s=0)
        self.tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Gateway:
        await self.store.open()
        rules = RuleEngine(RuleSpecs({}, {}, {s.event_code: s for s in DEFAULT_EVENT_ALARMS}))
        self.pipeline = Pipeline(self.store, normaliser=Normaliser(), rules=rules)
        self.tasks = [asyncio.create_task(s.run(self.pipeline)) for s in self.sources]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.store.close()

    def polls(self) -> int:
        return sum(d["ok"] for s in self.sources for d in s.stats["devices"].values())

    def emitted(self) -> int:
        return sum(s.readings_out for s in self.sources)

    def dropped(self) -> int:
        return sum(s.stats["handover"]["dropped_readings"] for s in self.sources)

    def skipped(self) -> int:
        return sum(s.skipped_cycles for s in self.sources)

    def reset_lags(self) -> None:
        for s in self.sources:
            s._lags.clear()

    def lag_p99(self) -> float:
        lags = sorted(lag for s in self.sources for lag in s._lags)
        return lags[min(len(lags) - 1, int(0.99 * len(lags)))] if lags else float("nan")


async def measure(gw: Gateway, warmup: float, seconds: float) -> dict[str, float]:
    await asyncio.sleep(warmup)
    gw.reset_lags()
    polls0, emitted0, rows0, skipped0 = gw.polls(), gw.emitted(), gw.store.rows_written, gw.skipped()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    wall = wall1 - wall0
    emitted = gw.emitted() - emitted0
    # Give the last deliveries a moment to commit before comparing counts.
    await asyncio.sleep(0.5)
    return {
        "reads_per_s": (gw.polls() - polls0) / wall,
        "cpu_pct": 100 * (cpu1 - cpu0) / wall,
        "lag_p99": gw.lag_p99(),
        "points_per_s": emitted / wall,
        "committed": gw.store.rows_written - rows0,
        "emitted": emitted,
        "dropped": gw.dropped(),
        "skipped": gw.skipped() - skipped0,
    }


async def naive_tcp(base: int, ports: int, units: int, seconds: float) -> float:
    """One read after the other over the same devices, as a first script would do it."""
    clients = [AsyncModbusTcpClient("127.0.0.1", port=base + p, retries=0) for p in range(ports)]
    for c in clients:
        await c.connect()
    reads = 0
    deadline = time.perf_counter() + seconds
    try:
        while time.perf_counter() < deadline:
            for p in range(ports):
                for u in range(1, units + 1):
                    await clients[p].read_holding_registers(0x0800, count=88, device_id=u)
                    reads += 1
                    if time.perf_counter() >= deadline:
                        return reads / seconds
        return reads / seconds
    finally:
        for c in clients:
            c.close()


async def bare_merged_loop(base: int, ports: int, units: int, seconds: float) -> float:
    """CPU % of a bare pymodbus loop reading each 30-tag device once a second (one merged read each)."""
    clients = [AsyncModbusTcpClient("127.0.0.1", port=base + p, retries=0) for p in range(ports)]
    for c in clients:
        await c.connect()

    stop = asyncio.Event()

    async def per_port(p: int) -> None:
        # Stopped by a flag, not by cancellation: pymodbus's wait_for can swallow a cancel on 3.11.
        next_t = time.perf_counter()
        while not stop.is_set():
            for u in range(1, units + 1):
                r = await clients[p].read_holding_registers(0, count=60, device_id=u)
                clients[p].convert_from_registers(r.registers, clients[p].DATATYPE.FLOAT32)
            next_t += 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_t - time.perf_counter()))

    tasks = [asyncio.create_task(per_port(p)) for p in range(ports)]
    await asyncio.sleep(1.0)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu = 100 * (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    stop.set()
    await asyncio.gather(*tasks)
    for c in clients:
        c.close()
    return cpu


async def part_tcp(work: Path, profiles: Path, quick: bool) -> None:
    ports, units, period = 20, 100, 10.0
    base = free_port_block(ports)
    scenario = {"name": "bench-tcp", "tcp": [{"id": "farm", "ports": [base, base + ports - 1], "devices": [
        {"id": "m", "unit_ids": [1, units], "profile": "acrel_adl400"}]}]}
    async with Simulator(scenario, work, profiles):
        sources = []
        for p in range(ports):
            bus = ModbusTcpBusConfig(kind="modbus_tcp", id=f"conv{p}", host="127.0.0.1", port=base + p)
            sources.append(ModbusSource(bus, [dev(f"m{p}-{u}", bus.id, "acrel_adl400", u, period)
                                              for u in range(1, units + 1)]))
        async with Gateway(sources, work / "tcp.db") as gw:
            m = await measure(gw, 3.0 if quick else 11.0, 10.0 if quick else 30.0)
        naive = await naive_tcp(base, ports, units, 3.0 if quick else 10.0)
    target_rate = ports * units / period
    bench("modbus_reads_per_s", m["reads_per_s"], "reads/s", baseline=f"{naive:.0f}", target=f"{target_rate:.0f}")
    bench("modbus_poll_lag_p99_s", m["lag_p99"], "s", target=1)
    bench("modbus_cpu_pct_of_core", m["cpu_pct"], "%", target=15)
    bench("modbus_naive_reads_per_s", naive, "reads/s")
    print(f"# tcp: {m['emitted']} readings emitted, {m['committed']} rows committed in the window, "
          f"{m['dropped']} dropped, {m['skipped']} cycles skipped", flush=True)


async def part_neuron(work: Path, profiles: Path, quick: bool) -> None:
    ports, units = 10, 50
    base = free_port_block(ports)
    scenario = {"name": "bench-neuron", "tcp": [{"id": "farm", "ports": [base, base + ports - 1], "devices": [
        {"id": "n", "unit_ids": [1, units], "profile": BENCH30}]}]}
    async with Simulator(scenario, work, profiles):
        sources = []
        for p in range(ports):
            bus = ModbusTcpBusConfig(kind="modbus_tcp", id=f"n{p}", host="127.0.0.1", port=base + p,
                                     profiles_dir=str(profiles))
            sources.append(ModbusSource(bus, [dev(f"n{p}-{u}", bus.id, BENCH30, u, 1.0) for u in range(1, units + 1)]))
        async with Gateway(sources, work / "neuron.db") as gw:
            m = await measure(gw, 3.0, 8.0 if quick else 20.0)
        bare = await bare_merged_loop(base, ports, units, 4.0 if quick else 10.0)
    bench("modbus_neuron_scenario_cpu_pct", m["cpu_pct"], "%", baseline=f"{bare:.1f}", target=25)
    bench("modbus_neuron_scenario_lag_p99_s", m["lag_p99"], "s", target=1)
    print(f"# neuron: {m['points_per_s']:.0f} points/s, {m['emitted']} emitted, {m['committed']} committed, "
          f"{m['dropped']} dropped, {m['skipped']} cycles skipped", flush=True)


async def part_rtu(work: Path, profiles: Path, quick: bool) -> None:
    link = work / "rtu-line"
    transmitters = 8
    scenario = {"name": "bench-rtu", "rtu": [{"id": "line", "link": str(link), "baudrate": 9600, "devices": [
        {"id": f"p{u}", "unit_id": u, "profile": "generic_rs485_pressure", "model": {"value": 0.3},
         "registers": {"unit_code": 0, "decimals": 3, "range_zero": 0, "range_full": 1.6}}
        for u in range(1, transmitters + 1)]}]}
    wire = rtu_transaction_wire_s(11, 9600)
    limit = 1 / wire
    async with Simulator(scenario, work, profiles):
        bus = ModbusRtuBusConfig(kind="modbus_rtu", id="line", port=str(link), baudrate=9600)
        source = ModbusSource(bus, [dev(f"p{u}", "line", "generic_rs485_pressure", u, 0.05)
                                    for u in range(1, transmitters + 1)])
        async with Gateway([source], work / "rtu.db"):
            await asyncio.sleep(1.0)
            tx0, t0 = source.stats["links"][0]["transactions"], time.perf_counter()
            await asyncio.sleep(4.0 if quick else 10.0)
            rate = (source.stats["links"][0]["transactions"] - tx0) / (time.perf_counter() - t0)
        naive = await naive_rtu(str(link), transmitters, 3.0 if quick else 5.0)
    bench("modbus_rtu_transactions_per_s", rate, "tx/s", baseline=f"{limit:.2f}")
    bench("modbus_rtu_wire_efficiency_pct", 100 * rate / limit, "%", baseline=100, target=85)
    print(f"# rtu: wire limit {limit:.2f} tx/s ({1000 * wire:.1f} ms per 11-register read at 9600 8N1); "
          f"a plain pymodbus serial loop (no inter-frame silence) got {naive:.2f} answered tx/s", flush=True)


async def naive_rtu(port: str, units: int, seconds: float) -> float:
    """Answered transactions/s of a plain pymodbus loop: it sends the next request at once."""
    client = AsyncModbusSerialClient(port, baudrate=9600, retries=0, timeout=0.2)
    await client.connect()
    done = 0
    deadline = time.perf_counter() + seconds
    t0 = time.perf_counter()
    try:
        while time.perf_counter() < deadline:
            for u in range(1, units + 1):
                with contextlib.suppress(Exception):
                    await client.read_holding_registers(2, count=11, device_id=u)
                    done += 1
    finally:
        client.close()
    return done / (time.perf_counter() - t0)


async def main() -> None:
    # pymodbus logs every timeout of the naive loops with a frame dump; the numbers are what matter here.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short windows (a smoke run, numbers are noisier)")
    parser.add_argument("--parts", default="tcp,neuron,rtu")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="modbus-bench-") as tmp:
        work = Path(tmp)
        profiles = work / "profiles"
        profiles.mkdir()
        write_bench_profile(profiles)
        parts = {"tcp": part_tcp, "neuron": part_neuron, "rtu": part_rtu}
        for name in args.parts.split(","):
            await parts[name](work, profiles, args.quick)
    print(f"# modbus bench took {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
