"""``python -m simulators.cjt188``: CJ/T 188 water, heat and gas meters on a socat pty until interrupted.

    python -m simulators.cjt188 --link /tmp/edge/cjt188 --meter 00000000000012:generic_water \
        --meter 00000000000030:generic_gas --valve-abnormal 00000000000030

Prints one line per meter, then ``READY``. Fault switches take meter addresses: ``--silent``,
``--corrupt`` (wrong checksum), ``--truncate``, ``--garbage``; state switches ``--valve-closed``,
``--valve-abnormal``, ``--low-battery``.
"""

from __future__ import annotations

import asyncio
import sys

from drivers.cjt188.codec import scan_frame
from drivers.cjt188.profile import load_profile
from edge.errors import ConfigError
from simulators.cjt188.meter import SimMeter
from simulators.dlt645.__main__ import parse_args, serve
from simulators.dlt645.line import MeterLineServer


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    states: dict[str, list[str]] = {"--valve-closed": [], "--valve-abnormal": [], "--low-battery": []}
    rest: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg in states:
            states[arg].append(next(it))
        else:
            rest.append(arg)
    args = parse_args(rest, "python -m simulators.cjt188", __doc__ or "")
    meters: list[SimMeter] = []
    try:
        for spec in args.meter:
            address, _, profile = spec.partition(":")
            meter = SimMeter(address.rjust(14, "0"), load_profile(profile or "generic_water", args.profiles_dir))
            for switch in ("silent", "corrupt", "truncate", "garbage"):
                setattr(meter, switch, meter.address in {a.rjust(14, "0") for a in getattr(args, switch)})
            meter.valve = 2 if address in states["--valve-abnormal"] else 1 if address in states["--valve-closed"] else 0
            meter.low_battery = address in states["--low-battery"]
            meters.append(meter)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    server = MeterLineServer(args.link, meters, scan_frame, baudrate=args.baudrate, parity=args.parity)
    asyncio.run(serve(server, [f"cjt188 {args.link} {m.address} {m.profile.id}" for m in meters], args.duration))
    return 0


if __name__ == "__main__":
    sys.exit(main())
