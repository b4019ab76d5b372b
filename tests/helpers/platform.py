"""Start the real platform simulator as a subprocess over HTTPS, and talk to its inspection API."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from edge.processes import held_ports, stop_process, wait_ready

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port for a server a test starts, below the ephemeral range (see ``edge.processes.held_ports``)."""
    with held_ports() as free:
        return free()


@dataclass
class PlatformSim:
    url: str
    ca: Path
    process: subprocess.Popen[bytes]
    port: int
    db: Path
    tls_dir: Path
    client_id: str = "gateway"
    client_secret: str = "test-secret"

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=ssl.create_default_context(cafile=str(self.ca)), timeout=30,
                            trust_env=False)

    def stats(self) -> dict[str, Any]:
        with self.http() as c:
            return c.get("/_sim/stats").json()

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = 0
        with self.http() as c:
            while True:
                params: dict[str, Any] = {"after_seq": after, "limit": 100_000}
                if kind:
                    params["kind"] = kind
                page = c.get("/_sim/records", params=params).json()["records"]
                if not page:
                    return out
                out.extend(page)
                after = page[-1]["seq"]

    def readings(self, device_id: str | None = None) -> list[dict[str, Any]]:
        """Telemetry as one entry per reading (``/_sim/readings``), whatever contract version it came in:
        ``seq`` and ``id`` of its record, ``device_id``, ``point``, ``value``, ``unit``, ``quality``, ``ts``."""
        out: list[dict[str, Any]] = []
        after = 0
        with self.http() as c:
            while True:
                params: dict[str, Any] = {"after_seq": after, "limit": 100_000}
                if device_id:
                    params["device_id"] = device_id
                page = c.get("/_sim/readings", params=params).json()
                if page["last_seq"] == after:
                    return out
                out.extend(page["readings"])
                after = page["last_seq"]

    def faults(self, **switches: Any) -> None:
        with self.http() as c:
            c.put("/_sim/faults", json=switches).raise_for_status()

    def stop(self) -> None:
        stop_process(self.process)

    def restart(self) -> None:
        self.stop()
        fresh = start_platform(self.db.parent, port=self.port, token_ttl=None)
        self.process = fresh.process


def start_platform(workdir: Path, *, port: int | None = None, token_ttl: float | None = 3600.0,
                   extra_args: tuple[str, ...] = ()) -> PlatformSim:
    """Start the simulator and wait for its health endpoint over verified TLS; never leaks the process."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    tls_dir = workdir / "tls"
    db = workdir / "platform.db"
    args = [sys.executable, "-m", "simulators.platform", "--port", str(port), "--db", str(db),
            "--tls-dir", str(tls_dir), "--client-id", "gateway", "--client-secret", "test-secret"]
    if token_ttl is not None:
        args += ["--token-ttl", str(token_ttl)]
    args += list(extra_args)  # e.g. --estate-id / --gateway-id / --client id:secret:estate:gateway
    logpath = workdir / f"platform-{port}.log"
    with open(logpath, "ab") as log:
        process = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    sim = PlatformSim(f"https://127.0.0.1:{port}", tls_dir / "ca.pem", process, port, db, tls_dir)

    def healthy() -> bool:
        with sim.http() as c:
            return c.get("/healthz", timeout=2).status_code == 200

    wait_ready(process, healthy, what="platform simulator", log_hint=f" (see {logpath})")
    return sim
