"""``python -m simulators.gb26875``: transmission devices that connect to the gateway and play the story.

    python -m simulators.gb26875 --port 9026 --address 0x1d6dd53c10ac [--devices 3] [--speed 2] [--loop]

``--devices N`` connects N devices (addresses counting up from ``--address``), each playing the
story. Switches: ``--corrupt`` (wrong checksums), ``--garbage`` (noise between frames), ``--silent``
(connect and say nothing). Prints ``READY`` once connected and one line per step sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from edge.tasks import wait_event
from simulators.gb26875.device import SimUitd
from simulators.gb26875.story import story


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.gb26875", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9026)
    parser.add_argument("--address", type=lambda s: int(s, 0), default=0x1D6DD53C10AC)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--speed", type=float, default=1.0, help="story speed factor (2 = twice as fast)")
    parser.add_argument("--loop", action="store_true", help="play the story again and again")
    parser.add_argument("--heartbeat-s", type=float, default=30.0, help="device state sent this often between steps")
    for switch in ("corrupt", "garbage", "silent"):
        parser.add_argument(f"--{switch}", action="store_true")
    parser.add_argument("--wait-s", type=float, default=0.0,
                        help="keep trying to connect this long (the gateway may start after the device)")
    parser.add_argument("--duration", type=float, default=None)
    args = parser.parse_args(argv)
    try:
        asyncio.run(_run(args))
    except OSError as exc:
        print(f"cannot connect to {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    return 0


async def _play(device: SimUitd, speed: float, loop: bool, heartbeat_s: float) -> None:
    """Play the story (again and again with ``loop``); a lost connection is re-established, as a device does."""
    while True:
        try:
            await _story(device, speed, loop, heartbeat_s)
            return
        except (OSError, TimeoutError) as exc:
            print(f"{device.address:012X} connection lost ({exc!r}); reconnecting", flush=True)
            await device.close()
            while True:
                await asyncio.sleep(1.0)
                with contextlib.suppress(OSError):
                    await device.connect()
                    break


async def _story(device: SimUitd, speed: float, loop: bool, heartbeat_s: float) -> None:
    from drivers.gb26875 import codec

    while True:
        for pause, objects, why in story():
            await asyncio.sleep(pause / speed)
            answer = await device.send(objects)
            print(f"{device.address:012X} {why}: {'confirmed' if answer == codec.CONFIRM else answer}", flush=True)
        if not loop:
            while True:  # stay connected, with a heartbeat so the centre keeps the device online
                await asyncio.sleep(heartbeat_s)
                await device.send([story()[0][1][0]])


async def _run(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    devices = [SimUitd(args.host, args.port, args.address + i, corrupt=args.corrupt, garbage=args.garbage,
                       silent=args.silent) for i in range(args.devices)]
    print("STARTED", flush=True)
    deadline = loop.time() + args.wait_s
    for device in devices:
        while True:
            try:
                await device.connect()
                break
            except OSError:
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(1.0)  # a real device retries its centre too
    print("READY", flush=True)
    tasks = [asyncio.create_task(_play(d, args.speed, args.loop, args.heartbeat_s)) for d in devices]
    await wait_event(stop, args.duration)
    for task in tasks:
        task.cancel()
    for device in devices:
        await device.close()


if __name__ == "__main__":
    sys.exit(main())
