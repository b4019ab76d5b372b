"""``estate-edge demo``: the daemon with every simulator, an embedded store, the panel.

It starts the platform simulator (HTTPS with its own private CA), writes a 0600 secrets file,
derives a runnable config from ``config/demo-estate.yaml`` (paths and ports pointed at the
simulators under ``workdir``), runs the gateway, and prints where to look.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from edge.app import Gateway
from simulators.readiness import stop_process, wait_ready

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "config" / "demo-estate.yaml"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port(preferred: int) -> int:
    if _port_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_platform(workdir: Path, port: int, client_secret: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PLATFORM_SIM_CLIENT_SECRET": client_secret, "PYTHONUNBUFFERED": "1"}
    logfile = open(workdir / "platform-sim.log", "ab")  # noqa: SIM115 - owned by the child process
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators.platform", "--port", str(port), "--db", str(workdir / "platform-sim.db"),
         "--tls-dir", str(workdir / "platform-tls"), "--client-id", "gateway"],
        cwd=REPO, env=env, stdout=logfile, stderr=subprocess.STDOUT,
    )
    ca = workdir / "platform-tls" / "ca.pem"

    def healthy() -> bool:
        return httpx.get(f"https://127.0.0.1:{port}/healthz", verify=str(ca), trust_env=False, timeout=2).is_success

    return wait_ready(process, healthy, what="platform simulator", log_hint=f"; see {workdir / 'platform-sim.log'}")


def write_demo_config(workdir: Path, platform_port: int, panel_port: int) -> tuple[Path, Path]:
    """Derive the runnable demo config and its 0600 secrets file inside ``workdir``."""
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    data = yaml.load(text, Loader=_KeepSecretsLoader)  # noqa: S506 - SafeLoader subclass, keeps !secret tags
    data["platform"]["url"] = f"https://127.0.0.1:{platform_port}"
    data["platform"]["ca_bundle"] = str(workdir / "platform-tls" / "ca.pem")
    data["store"]["path"] = str(workdir / "estate-edge.db")
    data["store"]["evidence_dir"] = str(workdir / "evidence")
    data["panel"]["port"] = panel_port
    config_path = workdir / "estate.yaml"
    config_path.write_text(yaml.dump(data, Dumper=_KeepSecretsDumper, allow_unicode=True, sort_keys=False),
                           encoding="utf-8")
    secrets_path = workdir / "secrets.yaml"
    if not secrets_path.exists():
        secrets_path.touch(mode=0o600)
        secrets_path.write_text(
            f"platform_client_secret: {secrets.token_urlsafe(18)}\ncamera_password: {secrets.token_urlsafe(12)}\n",
            encoding="utf-8")
    secrets_path.chmod(0o600)
    return config_path, secrets_path


class _Secret(str):
    """A ``!secret name`` kept as a tag while the demo rewrites the config."""


class _KeepSecretsLoader(yaml.SafeLoader):
    pass


class _KeepSecretsDumper(yaml.SafeDumper):
    pass


_KeepSecretsLoader.add_constructor("!secret", lambda loader, node: _Secret(loader.construct_scalar(node)))
_KeepSecretsDumper.add_representer(_Secret, lambda dumper, value: dumper.represent_scalar("!secret", str(value)))


def run_demo(workdir: Path, duration_s: float | None = None) -> int:
    shared = Path(os.environ.get("EDGE_SHARED_DIR", REPO.parent / "shared"))
    if "EDGE_MODELS_DIR" not in os.environ and (shared / "models").is_dir():
        os.environ["EDGE_MODELS_DIR"] = str(shared / "models")  # the demo runs on the shared model copy
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    platform_port = _free_port(8443)
    panel_port = _free_port(8080)
    config_path, secrets_path = write_demo_config(workdir, platform_port, panel_port)
    client_secret = yaml.safe_load(secrets_path.read_text(encoding="utf-8"))["platform_client_secret"]
    children: list[subprocess.Popen[bytes]] = []
    try:
        children.append(_start_platform(workdir, platform_port, client_secret))
        children.extend(start_device_simulators(workdir, yaml.safe_load(secrets_path.read_text(encoding="utf-8"))))
        print("\n=== estate-edge demo ===", flush=True)
        print(f"  panel / status page:        http://127.0.0.1:{panel_port}/", flush=True)
        print(f"  platform simulator (view):  https://127.0.0.1:{platform_port}/_sim  "
              f"(CA: {workdir / 'platform-tls' / 'ca.pem'})", flush=True)
        print(f"  config in use:              {config_path}", flush=True)
        print("  first start: open the panel's /setup page with the one-time setup token the log prints below", flush=True)
        print("  stop with Ctrl-C\n", flush=True)
        gateway = Gateway(config_path, secrets_path)
        asyncio.run(_run(gateway, duration_s))
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            stop_process(child)
    return 0


CAMERA_SIMULATOR_ARGS = [
    "--rtsp-port", "18554", "--discovery-port", "13702", "--user", "admin",
    "--camera", "CAM-B1-LANE=lane_a7_park@18081,scale=0.25,fps=5",
    "--camera", "CAM-B2-LOBBY=door_b2_motorcycle@18082,fps=5",
]


def _spawn(workdir: Path, name: str, args: list[str], ready: str, env: dict[str, str] | None = None,
           timeout_s: float = 60) -> subprocess.Popen[bytes]:
    """Start a simulator module and wait until its log shows ``ready``."""
    logpath = workdir / f"{name}.log"
    logfile = open(logpath, "wb")  # noqa: SIM115 - owned by the child process
    process = subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, stdout=logfile, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    return wait_ready(process, lambda: ready in logpath.read_text(encoding="utf-8", errors="replace"), what=name,
                      timeout_s=timeout_s, interval_s=0.2, log_hint=f"; see {logpath}")


def start_device_simulators(workdir: Path, secret_values: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """Every device simulator the demo estate talks to, each a separate process as a real device would be."""
    children = []
    try:
        children.append(_spawn(workdir, "modbus-sim", ["simulators.modbus", "--scenario", "demo"], "READY"))
        children.append(_spawn(workdir, "camera-sim", ["simulators.camera", *CAMERA_SIMULATOR_ARGS,
                                                        "--password", secret_values["camera_password"]], "ready"))
        for name, args, ready in _protocol_simulators():
            children.append(_spawn(workdir, name, args, ready))
    except BaseException:
        for child in children:
            stop_process(child)
        raise
    return children


def _protocol_simulators() -> list[tuple[str, list[str], str]]:
    """3栋's DL/T 645 and CJ/T 188 meter lines and the fire panel's GB/T 26875.3 device, at the demo config's ports.

    The transmission device is a client of the gateway, which starts after the simulators: it keeps
    retrying its connection (``--wait-s``), and is ready to wait for once it has started.
    """
    doc = yaml.load(DEMO_CONFIG.read_text(encoding="utf-8"), Loader=_KeepSecretsLoader)  # noqa: S506 - SafeLoader subclass
    buses = {b["kind"]: b for b in doc["buses"]}
    out: list[tuple[str, list[str], str]] = []
    if "dlt645" in buses:
        b = buses["dlt645"]
        out.append(("dlt645-sim", ["simulators.dlt645", "--link", b["port"], "--baudrate", str(b["baudrate"]),
                                   "--parity", b["parity"], "--meter", "665544332211:generic_household"], "READY"))
    if "cjt188" in buses:
        b = buses["cjt188"]
        out.append(("cjt188-sim", ["simulators.cjt188", "--link", b["port"], "--baudrate", str(b["baudrate"]),
                                   "--parity", b["parity"], "--meter", "00000000000012:generic_water",
                                   "--meter", "00000000000030:generic_gas"], "READY"))
    if "gb26875" in buses:
        b = buses["gb26875"]
        out.append(("gb26875-sim", ["simulators.gb26875", "--host", b["host"], "--port", str(b["port"]),
                                    "--address", "0x1d6dd53c10ac", "--loop", "--speed", "0.1", "--wait-s", "600"],
                    "STARTED"))
    return out


async def _run(gateway: Gateway, duration_s: float | None) -> None:
    if duration_s is not None:
        asyncio.get_running_loop().call_later(duration_s, gateway.request_stop)
    await gateway.run()
