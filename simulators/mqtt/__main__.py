"""``python -m simulators.mqtt``: a farm of MQTT devices publishing through a real broker until interrupted.

With ``--start-broker DIR`` it starts its own Mosquitto (files in DIR) on a free port (or
``--broker-port``) instead of using ``--host``/``--port``, and prints ``BROKER <port>``. Each device prints one line
(``DEVICE <id> <profile> <base topic>``), then ``READY``; a report cycle of every device follows
each ``--interval`` seconds. SIGINT / SIGTERM stop it (and its broker) cleanly.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from simulators.mqtt.broker import MosquittoBroker
from simulators.mqtt.devices import Kind, SimDevice
from simulators.mqtt.farm import MqttDeviceFarm


def farm_devices(smoke: int, leak: int, lift: int, prefix: str) -> list[SimDevice]:
    """``smoke`` smoke detectors, ``leak`` leak probes and ``lift`` lift boxes under ``prefix``."""
    out: list[SimDevice] = []
    counts: list[tuple[Kind, int]] = [("smoke", smoke), ("leak", leak), ("lift", lift)]
    for kind, n in counts:
        out.extend(SimDevice(f"{kind}-{i}", kind, f"{prefix}/{kind}/{i}") for i in range(1, n + 1))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.mqtt", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--start-broker", type=Path, default=None, metavar="DIR", help="start Mosquitto with files in DIR")
    parser.add_argument("--broker-port", type=int, default=None, help="with --start-broker: its port (default: a free one)")
    parser.add_argument("--prefix", default="estate/demo", help="topic prefix of every device")
    parser.add_argument("--smoke", type=int, default=2, help="NB-IoT smoke detectors")
    parser.add_argument("--leak", type=int, default=1, help="water-leak probes")
    parser.add_argument("--lift", type=int, default=1, help="lift boxes")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between report cycles")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    broker = MosquittoBroker(args.start_broker, port=args.broker_port) if args.start_broker else None
    port = args.port
    if broker is not None:
        broker.start()
        port = broker.port
        print(f"BROKER {port}", flush=True)
    try:
        devices = farm_devices(args.smoke, args.leak, args.lift, args.prefix)
        with MqttDeviceFarm(args.host, port, devices) as farm:
            for d in devices:
                print(f"DEVICE {d.id} {d.profile} {d.base_topic}")
            print("READY", flush=True)
            elapsed = 0.0
            while not stop.is_set() and (args.duration is None or elapsed < args.duration):
                farm.run_cycle()
                stop.wait(args.interval)
                elapsed += args.interval
    finally:
        if broker is not None:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
