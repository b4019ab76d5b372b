"""systemd's service protocol: tell the manager we are ready, alive, stopping (``sd_notify``).

Why our own ~30 lines instead of a library: the protocol is one unix datagram per state change,
sent to the socket named in ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace);
python-systemd needs libsystemd headers to build, and the pure-Python ports add nothing we need.
Outside systemd (no ``$NOTIFY_SOCKET``: the demo, the tests, a shell) every call is a no-op.

The unit is ``Type=notify`` with ``WatchdogSec``: systemd counts the service started only after
``READY=1`` (sent once the store, the panel and the sources are up), and kills and restarts it when
no ``WATCHDOG=1`` arrives within the period. :func:`watchdog` sends one only after proving the
event loop turns over promptly and the store answers a read, so a wedged loop or a hung SQLite
connection stops the pings and systemd restarts the gateway. ``STOPPING=1`` goes out when the
shutdown begins, so ``systemctl stop`` waits for the store flush instead of counting a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Protocol

from edge.config.yaml_loader import load_file
from edge.errors import EdgeError

log = logging.getLogger(__name__)

# A store read or a loop turn slower than this (seconds) skips the ping; systemd acts after WatchdogSec.
PROBE_TIMEOUT_S = 5.0
MAX_LOOP_LAG_S = 2.0


class Notifier:
    """Sends state lines to ``$NOTIFY_SOCKET``; ``send`` returns False (and never raises) when it cannot."""

    def __init__(self, address: str | None) -> None:
        if address and address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace
        self.address = address or None

    @classmethod
    def from_env(cls) -> Notifier:
        return cls(os.environ.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *states: str) -> bool:
        """Send ``KEY=value`` lines as one datagram (``READY=1``, ``WATCHDOG=1``, ``STATUS=...``)."""
        if self.address is None:
            return False
        message = "\n".join(states).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(message)
        except OSError as exc:
            log.warning("sd_notify to %r failed: %s", self.address, exc)
            return False
        return True


def watchdog_interval_s() -> float | None:
    """Half of ``WatchdogSec`` (systemd's advice), or None when the watchdog is off or meant for another process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    try:
        return max(int(usec) / 2_000_000, 0.05)
    except ValueError:
        return None


class ReadableStore(Protocol):
    async def answers(self) -> bool: ...


async def healthy(store: ReadableStore) -> str | None:
    """None when the loop turns over within ``MAX_LOOP_LAG_S`` and the store answers ``SELECT 1``; else why not."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.sleep(0)
    lag = loop.time() - started
    if lag > MAX_LOOP_LAG_S:
        return f"event loop lagged {lag:.1f} s"
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            ok = await store.answers()
    except TimeoutError:
        return f"store read took longer than {PROBE_TIMEOUT_S:.0f} s"
    except Exception as exc:
        return f"store read failed: {exc}"
    return None if ok else "store read returned no row"


async def watchdog(notifier: Notifier, store: ReadableStore, interval_s: float) -> None:
    """Ping systemd every ``interval_s`` while healthy; log (once per change) and withhold the ping when not."""
    last_problem: str | None = None
    while True:
        problem = await healthy(store)
        if problem is None:
            notifier.send("WATCHDOG=1")
            if last_problem is not None:
                log.info("watchdog: healthy again")
        elif problem != last_problem:
            log.error("watchdog: not pinging systemd: %s", problem)
        last_problem = problem
        await asyncio.sleep(interval_s)


# ---------------------------------------------------------------------- serial ports for the unit

# Where the README tells installers to put the drop-in (named in its header so it says what it is).
DROPIN_PATH = "/etc/systemd/system/estate-edge.service.d/serial-ports.conf"


def serial_ports(config_path: Path) -> list[str]:
    """The serial devices the estate's buses open (a bus whose ``port`` is a path under /dev/), in file order.

    Read from the YAML as written (no secrets or validation needed): this only feeds the unit's
    device list, and ``estate-edge check`` judges the config itself.
    """
    data = load_file(config_path).data
    buses = (data.get("buses") if isinstance(data, dict) else None) or []
    ports = [b["port"] for b in buses if isinstance(b, dict) and isinstance(b.get("port"), str)
             and b["port"].startswith("/dev/")]
    return list(dict.fromkeys(ports))


def serial_dropin(config_path: Path) -> str:
    """A drop-in that narrows the unit's device access from every tty class to exactly these ports."""
    ports = serial_ports(config_path)
    lines = [f"# {DROPIN_PATH}, written by: estate-edge-serial-dropin {config_path}",
             "# Device access for the configured serial ports only (replaces the unit's tty classes).",
             "[Service]", "DeviceAllow="]
    lines += [f"DeviceAllow={port} rw" for port in ports]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``estate-edge-serial-dropin CONFIG`` (``python -m edge.service CONFIG``): print the serial-port drop-in."""
    parser = argparse.ArgumentParser(prog="estate-edge-serial-dropin", description=main.__doc__)
    parser.add_argument("config", type=Path)
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(serial_dropin(args.config))
    except (EdgeError, OSError, ValueError) as exc:
        print(f"estate-edge-serial-dropin: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
