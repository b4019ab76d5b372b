"""``python -m simulators.modbus --scenario FILE``: serve a scenario until interrupted.

Prints one line per served device (transport, address, unit, id, profile), then ``READY``, so a
script (or ``estate-edge demo``) can wait for it. SIGINT / SIGTERM stop it cleanly (socat too).
``--silent DEVICE`` (repeatable) keeps a device from answering at all, from the start: the
installer's "what does the gateway do with a dead DI module / lift box" check.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from drivers.modbus.profile import ProfileLibrary
from edge.errors import ConfigError
from edge.tasks import wait_event
from simulators.modbus.scenario import Behaviour, RtuLine, Scenario, TcpListener, load_scenario
from simulators.modbus.simulator import ModbusSimulator

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.modbus", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", required=True,
                        help="scenario YAML file, or the name of a shipped one (e.g. demo)")
    parser.add_argument("--rtu-dir", type=Path, default=None,
                        help="put every RTU line's gateway end at DIR/<line id> instead of the scenario's link")
    parser.add_argument("--profiles-dir", action="append", default=[], help="extra profile directory (repeatable)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--quiet", action="store_true", help="print only READY (for farms of thousands)")
    parser.add_argument("--silent", action="append", default=[], metavar="DEVICE",
                        help="this device never answers (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    path = Path(args.scenario)
    if not path.is_file() and (SCENARIOS_DIR / f"{args.scenario}.yaml").is_file():
        path = SCENARIOS_DIR / f"{args.scenario}.yaml"
    try:
        scenario = load_scenario(path)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    if args.rtu_dir is not None:
        lines = [line.model_copy(update={"link": str(args.rtu_dir / line.id)}) for line in scenario.rtu]
        scenario = scenario.model_copy(update={"rtu": lines})
    known = {spec.id for group in (*scenario.tcp, *scenario.rtu) for spec in group.devices}
    unknown = sorted(set(args.silent) - known)
    if unknown:
        print(f"--silent: no device {', '.join(unknown)} in {path} (devices: {', '.join(sorted(known))})",
              file=sys.stderr)
        return 2
    if args.silent:
        scenario = _silenced(scenario, set(args.silent))
    try:
        asyncio.run(_serve(scenario, ProfileLibrary(args.profiles_dir), args.duration, args.quiet))
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    return 0


def _silenced(scenario: Scenario, silent: set[str]) -> Scenario:
    """The scenario with ``silent`` devices offline from the start (their cues still apply later)."""
    offline = Behaviour(mode="offline")

    def group(g: TcpListener | RtuLine) -> TcpListener | RtuLine:
        devices = [d.model_copy(update={"behaviour": offline}) if d.id in silent else d for d in g.devices]
        return g.model_copy(update={"devices": devices})

    return scenario.model_copy(update={"tcp": [group(g) for g in scenario.tcp], "rtu": [group(g) for g in scenario.rtu]})


async def _serve(scenario, profiles: ProfileLibrary, duration: float | None, quiet: bool) -> None:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with ModbusSimulator(scenario, profiles) as sim:
        if not quiet:
            print("\n".join(sim.describe()))
        print("READY", flush=True)
        await wait_event(stop, duration)


if __name__ == "__main__":
    sys.exit(main())
