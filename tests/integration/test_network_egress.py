"""The README's promise, checked on a real daemon process: it connects only to what the config names.

The daemon runs under a Python audit hook (``sys.addaudithook``) that writes down every outbound
socket operation: ``socket.connect``, ``socket.sendto`` and name lookups (``socket.getaddrinfo``).
The estate has a Modbus TCP converter (the simulator), the platform (HTTPS, OAuth2) and the panel
switched on; after the daemon has polled, uploaded and served for a while, every address it
reached must be one of the configured ones: no update checks, no telemetry home, no stray DNS.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

from simulators.modbus.scenario import Scenario
from simulators.modbus.simulator import ModbusSimulator
from tests.helpers.config import write_estate
from tests.helpers.platform import PlatformSim, free_port
from tests.helpers.waiting import eventually

REPO = Path(__file__).resolve().parents[2]

# Runs the daemon's own entry point with the hook installed first; each event is one JSON line.
AUDITED_DAEMON = """
import json, runpy, sys
log = open(sys.argv[1], "a", buffering=1)
def hook(event, args):
    if event in ("socket.connect", "socket.sendto"):
        address = args[1]
        log.write(json.dumps([event, list(address) if isinstance(address, tuple) else str(address)]) + "\\n")
    elif event == "socket.getaddrinfo":
        log.write(json.dumps([event, [str(args[0]), args[1]]]) + "\\n")
sys.addaudithook(hook)
sys.argv = ["estate-edge", *sys.argv[2:]]
runpy.run_module("edge.cli", run_name="__main__")
"""


async def test_daemon_reaches_only_the_configured_endpoints(tmp_path: Path, platform_sim: PlatformSim) -> None:
    scenario = Scenario.model_validate({"name": "egress", "tcp": [{"id": "conv", "port": 0, "devices": [
        {"id": "m", "unit_id": 1, "profile": "eastron_sdm120"}]}]})
    audit = tmp_path / "audit.jsonl"
    async with ModbusSimulator(scenario) as sim:
        modbus_port = sim.tcp_servers[0].port
        config, secrets = write_estate(tmp_path, platform_url=platform_sim.url, ca=platform_sim.ca, extra={
            "panel": {"enabled": True, "host": "127.0.0.1", "port": free_port()},
            "buses": [{"kind": "modbus_tcp", "id": "conv", "host": "127.0.0.1", "port": modbus_port}],
            "devices": [{"id": "B1-EM-01", "name": "meter", "bus": "conv", "profile": "eastron_sdm120",
                         "category": "electricity", "location": {"building": "1"}, "unit_id": 1,
                         "poll_interval_s": 0.2}],
        })
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", AUDITED_DAEMON, str(audit), "run", str(config), "--secrets", str(secrets),
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert proc.stdout is not None
        output = []
        try:
            async with asyncio.timeout(30):
                while b"estate-edge running" not in (line := await proc.stdout.readline()):
                    assert line, "".join(output)
                    output.append(line.decode(errors="replace"))
            # Polls, then uploads: the token, the device inventory sent at start, telemetry (the clock check
            # reads the platform's answers). Stopped once all of them were seen at the platform.
            await eventually(lambda: bool(platform_sim.records("device")) and bool(platform_sim.records("telemetry")),
                             timeout=30, what="the inventory and telemetry at the platform")
            proc.send_signal(signal.SIGTERM)
            rest, _ = await asyncio.wait_for(proc.communicate(), 15)
            output.append(rest.decode(errors="replace"))
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0, "".join(output)[-3000:]

    platform = urlsplit(platform_sim.url)
    allowed = {("127.0.0.1", modbus_port), (platform.hostname, platform.port)}
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    connects = {(e[1][0], e[1][1]) for e in events if e[0] in ("socket.connect", "socket.sendto")
                and isinstance(e[1], list)}
    lookups = {e[1][0] for e in events if e[0] == "socket.getaddrinfo"}
    assert (platform.hostname, platform.port) in connects, events  # the audit saw the uploads
    assert ("127.0.0.1", modbus_port) in connects, events  # and the polling
    assert connects <= allowed, f"unexpected destinations: {connects - allowed}"
    assert lookups <= {"127.0.0.1", "localhost", platform.hostname}, f"unexpected name lookups: {lookups}"
    assert platform_sim.records("telemetry")  # the run did real work, not an idle start-up
