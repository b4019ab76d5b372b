"""``python -m simulators.opcua --folder DIR [--port N]``: serve the pump-room PLC until interrupted.

Prints ``ENDPOINT opc.tcp://...`` and ``READY``; values drift slowly so a demo shows changes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

from simulators.opcua.server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.opcua", description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, required=True, help="where the server certificate is kept")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.folder, args.port, args.duration))
    return 0


if __name__ == "__main__":
    sys.exit(main())
