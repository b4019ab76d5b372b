"""Start the real platform simulator as a subprocess over HTTPS, and talk to its inspection API."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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

    def faults(self, **switches: Any) -> None:
        with self.http() as c:
            c.put("/_sim/faults", json=switches).raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        fresh = start_platform(self.db.parent, port=self.port, token_ttl=None)
        self.process = fresh.process


def start_platform(workdir: Path, *, port: int | None = None, token_ttl: float | None = 3600.0) -> PlatformSim:
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    tls_dir = workdir / "tls"
    db = workdir / "platform.db"
    args = [sys.executable, "-m", "simulators.platform", "--port", str(port), "--db", str(db),
            "--tls-dir", str(tls_dir), "--client-id", "gateway", "--client-secret", "test-secret"]
    if token_ttl is not None:
        args += ["--token-ttl", str(token_ttl)]
    log = open(workdir / f"platform-{port}.log", "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    sim = PlatformSim(f"https://127.0.0.1:{port}", tls_dir / "ca.pem", process, port, db, tls_dir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"platform simulator exited: see {workdir}/platform-{port}.log")
        if sim.ca.exists():
            try:
                with sim.http() as c:
                    if c.get("/_sim/stats").status_code == 200:
                        return sim
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("platform simulator did not start within 30 s")
