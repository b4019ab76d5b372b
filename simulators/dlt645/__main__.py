"""``python -m simulators.dlt645``: DL/T 645 meters on a socat pty until interrupted.

    python -m simulators.dlt645 --link /tmp/edge/dlt645 --baudrate 2400 --parity E \
        --meter 665544332211:generic_household --meter 000000000002:generic_three_phase --silent 000000000002

Prints one line per meter, then ``READY``. Fault switches take meter addresses: ``--silent``,
``--corrupt`` (wrong checksum), ``--truncate``, ``--garbage`` (noise before each reply).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from drivers.dlt645.codec import scan_frame
from drivers.dlt645.profile import load_profile
from edge.errors import ConfigError
from edge.tasks import wait_event
from simulators.dlt645.line import MeterLineServer
from simulators.dlt645.meter import SimMeter


def parse_args(argv: list[str] | None, prog: str, doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    parser.add_argument("--link", required=True, help="path of the gateway's end of the pty pair")
    parser.add_argument("--baudrate", type=int, default=2400)
    parser.add_argument("--parity", choices=["N", "E", "O"], default="E")
    parser.add_argument("--meter", action="append", default=[], required=True, help="ADDRESS:PROFILE (repeatable)")
    parser.add_argument("--profiles-dir", action="append", default=[])
    for switch in ("silent", "corrupt", "truncate", "garbage"):
        parser.add_argument(f"--{switch}", action="append", default=[], metavar="ADDRESS")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, "python -m simulators.dlt645", __doc__ or "")
    meters: list[SimMeter] = []
    try:
        for spec in args.meter:
            address, _, profile = spec.partition(":")
            meter = SimMeter(address.rjust(12, "0"), load_profile(profile or "generic_household", args.profiles_dir))
            for switch in ("silent", "corrupt", "truncate", "garbage"):
                setattr(meter, switch, address in getattr(args, switch) or meter.address in getattr(args, switch))
            meters.append(meter)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    asyncio.run(serve(MeterLineServer(args.link, meters, scan_frame, baudrate=args.baudrate, parity=args.parity),
                      [f"dlt645 {args.link} {m.address} {m.profile.id}" for m in meters], args.duration))
    return 0


async def serve(server: MeterLineServer, lines: list[str], duration: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        print("\n".join(lines))
        print("READY", flush=True)
        await wait_event(stop, duration)
    finally:
        await server.stop()


if __name__ == "__main__":
    sys.exit(main())
