"""``estate-edge demo``: the daemon with every simulator, an embedded store, the panel.

It starts the platform simulator (HTTPS with its own private CA), writes a 0600 secrets file,
derives a runnable config from ``config/demo-estate.yaml`` (paths and ports pointed at the
simulators under ``workdir``), runs the gateway, and prints where to look.

Two demos (or a demo and a test run) can share a host: every TCP/UDP port is picked free for this
run, and every file, the RS-485 pty links included, lives in this run's folder (by default a new
``var/demo/run-<time>-<pid>``). The banner prints every port and path the run uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from edge.app import Gateway
from edge.errors import ConfigError
from edge.processes import held_ports, stop_process, wait_ready

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "config" / "demo-estate.yaml"
MODBUS_SCENARIO = REPO / "simulators" / "modbus" / "scenarios" / "demo.yaml"
BLE_RECORDING = REPO / "simulators" / "ble" / "recordings" / "pump_room.jsonl"
NO_MOSQUITTO = "mosquitto is not installed: the demo runs without its MQTT smoke detector (apt install mosquitto)"
# The demo clock (edge.indicators.demo_clock): the running hour's indicators, marked demo, this often,
# so the platform page shows indicators in the first minutes instead of after the first hour closes.
DEMO_INDICATOR_PERIOD_S = 60


@dataclass(frozen=True, slots=True)
class DemoPorts:
    """Every port one demo run uses, all on 127.0.0.1, chosen free by the kernel at start.

    None is fixed or preferred: two demos started together would both find a preferred port free
    and then collide on it. The banner prints each one.
    """

    panel: int
    platform: int
    modbus_tcp: int
    gb26875: int
    rtsp: int
    onvif_lane: int
    onvif_lobby: int
    discovery_udp: int
    mqtt: int = 0  # the demo's Mosquitto (4栋's NB-IoT smoke detector publishes through it)
    opcua: int = 0  # the pump-room PLC simulator

    @classmethod
    def pick(cls) -> DemoPorts:
        """Free ports, distinct from each other, below the ephemeral range (``edge.processes.held_ports``)."""
        with held_ports() as free:
            return cls(free(), free(), free(), free(), free(), free(), free(), free(socket.SOCK_DGRAM), free(), free())

    def lines(self) -> list[tuple[str, str]]:
        return [("panel / status page", f"http://127.0.0.1:{self.panel}/"),
                ("platform simulator (view)", f"https://127.0.0.1:{self.platform}/_sim"),
                ("1栋 Modbus TCP converter", f"127.0.0.1:{self.modbus_tcp}"),
                ("fire panel GB/T 26875.3", f"127.0.0.1:{self.gb26875} (the gateway listens)"),
                ("cameras ONVIF", f"127.0.0.1:{self.onvif_lane} (CAM-B1-LANE), 127.0.0.1:{self.onvif_lobby} (CAM-B2-LOBBY)"),
                ("cameras RTSP", f"rtsp://127.0.0.1:{self.rtsp}/"),
                ("camera WS-Discovery (UDP)", f"127.0.0.1:{self.discovery_udp}"),
                ("MQTT broker (Mosquitto)", f"127.0.0.1:{self.mqtt}"),
                ("pump-room PLC OPC-UA", f"opc.tcp://127.0.0.1:{self.opcua}/estate-edge/pump-room")]


def default_workdir() -> Path:
    """A new folder per run, so two demos on one host never share a store, a pty or a certificate."""
    return Path("var") / "demo" / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


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


def demo_document(workdir: Path, ports: DemoPorts, *, mqtt: bool = True) -> dict[str, Any]:
    """``config/demo-estate.yaml`` with every port and path pointed at this run's simulators and folder.

    ``mqtt=False`` (no Mosquitto on this host) leaves the MQTT bus and its devices out.
    """
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    data = yaml.load(text, Loader=_KeepSecretsLoader)  # noqa: S506 - SafeLoader subclass, keeps !secret tags
    if not isinstance(data, dict):
        raise ConfigError(f"{DEMO_CONFIG}: the demo config is not a YAML mapping")
    data["estate"]["demo"] = True  # the panel's demo banner; allows the demo clock below
    data.setdefault("indicators", {})["demo_period_s"] = DEMO_INDICATOR_PERIOD_S
    data["platform"]["url"] = f"https://127.0.0.1:{ports.platform}"
    data["platform"]["ca_bundle"] = str(workdir / "platform-tls" / "ca.pem")
    data["store"]["path"] = str(workdir / "estate-edge.db")
    data["store"]["evidence_dir"] = str(workdir / "evidence")
    data["panel"]["port"] = ports.panel
    for bus in data["buses"]:
        if bus["kind"] == "modbus_tcp":
            bus["port"] = ports.modbus_tcp
        elif bus["kind"] == "gb26875":
            bus["port"] = ports.gb26875
        elif isinstance(bus.get("port"), str):  # a serial line: the simulator's pty link, in this run's folder
            bus["port"] = str(workdir / bus["id"].lower())
    for bus in data["buses"]:
        if bus["kind"] == "mqtt":
            bus["port"] = ports.mqtt
        elif bus["kind"] == "opcua":
            bus["endpoint"] = f"opc.tcp://127.0.0.1:{ports.opcua}/estate-edge/pump-room"
        elif bus["kind"] == "ble" and bus.get("replay"):  # a copy in this run's folder, labelled a replay
            bus["replay"] = str(workdir / "ble-replay.jsonl")
    if not mqtt:
        dropped = {bus["id"] for bus in data["buses"] if bus["kind"] == "mqtt"}
        data["buses"] = [bus for bus in data["buses"] if bus["id"] not in dropped]
        data["devices"] = [device for device in data["devices"] if device["bus"] not in dropped]
    camera_ports = {"CAM-B1-LANE": ports.onvif_lane, "CAM-B2-LOBBY": ports.onvif_lobby}
    for camera in data.get("cameras", []):
        camera["port"] = camera_ports[camera["id"]]
    return data


def write_demo_config(workdir: Path, ports: DemoPorts, *, mqtt: bool = True) -> tuple[Path, Path]:
    """Derive the runnable demo config and its 0600 secrets file inside ``workdir``."""
    data = demo_document(workdir, ports, mqtt=mqtt)
    for bus in data["buses"]:
        if bus["kind"] == "ble" and bus.get("replay"):
            shutil.copyfile(BLE_RECORDING, bus["replay"])
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


def _keep_secret(loader: yaml.SafeLoader, node: yaml.Node) -> _Secret:
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(None, None, "!secret takes one secret name", node.start_mark)
    return _Secret(loader.construct_scalar(node))


_KeepSecretsLoader.add_constructor("!secret", _keep_secret)
_KeepSecretsDumper.add_representer(_Secret, lambda dumper, value: dumper.represent_scalar("!secret", str(value)))


def run_demo(workdir: Path | None = None, duration_s: float | None = None) -> int:
    shared = Path(os.environ.get("EDGE_SHARED_DIR", REPO.parent / "shared"))
    if "EDGE_MODELS_DIR" not in os.environ and (shared / "models").is_dir():
        os.environ["EDGE_MODELS_DIR"] = str(shared / "models")  # the demo runs on the shared model copy
    workdir = (workdir or default_workdir()).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    ports = DemoPorts.pick()
    mqtt = has_mosquitto()
    if not mqtt:
        print(NO_MOSQUITTO, flush=True)
    config_path, secrets_path = write_demo_config(workdir, ports, mqtt=mqtt)
    doc = yaml.load(config_path.read_text(encoding="utf-8"), Loader=_KeepSecretsLoader)  # noqa: S506 - SafeLoader subclass
    secret_values = yaml.safe_load(secrets_path.read_text(encoding="utf-8"))
    children: list[subprocess.Popen[bytes]] = []
    # A SIGTERM while the simulators start (a test's timeout, an impatient `kill`) must still stop them:
    # Python's default action ends the process at once and would leave them running, orphaned.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        children.append(_start_platform(workdir, ports.platform, secret_values["platform_client_secret"]))
        children.extend(start_device_simulators(workdir, secret_values, ports, doc))
        print_banner(workdir, ports, doc, config_path)
        gateway = Gateway(config_path, secrets_path)
        asyncio.run(_run(gateway, duration_s))
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            stop_process(child)
        signal.signal(signal.SIGTERM, previous)
    return 0


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def has_mosquitto() -> bool:
    """Whether this host can run the demo's MQTT broker (``scripts/bootstrap`` installs it for the tests)."""
    return shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()


def print_banner(workdir: Path, ports: DemoPorts, doc: dict[str, Any], config_path: Path) -> None:
    """Where to look: every port and path this run uses, and how to log in."""
    rows = ports.lines()
    if not any(bus["kind"] == "mqtt" for bus in doc["buses"]):
        rows = [(name, value) for name, value in rows if not name.startswith("MQTT")]
    rows += [(f"BLE {bus['id']} (replay, no radio)", str(bus["replay"])) for bus in doc["buses"]
             if bus["kind"] == "ble" and bus.get("replay")]
    rows.append(("platform CA", str(workdir / "platform-tls" / "ca.pem")))
    rows += [(f"RS-485 line {bus['id']}", str(bus["port"])) for bus in doc["buses"] if isinstance(bus.get("port"), str)]
    rows += [("config in use", str(config_path)), ("this run's folder", str(workdir))]
    rows.append(("demo clock", f"indicators of the running hour every {DEMO_INDICATOR_PERIOD_S} s, "
                               "marked dimensions.demo=running_hour (real hours still close on the hour)"))
    width = max(_columns(name) for name, _ in rows) + 1
    print("\n=== estate-edge demo ===", flush=True)
    for name, value in rows:
        print(f"  {name}:{' ' * (width - _columns(name))} {value}", flush=True)
    if _has_accounts(workdir / "estate-edge.db"):
        print("  log in with the panel account created in this folder before", flush=True)
    else:
        print("  first start: open the panel's /setup page with the one-time setup token the log prints below", flush=True)
    print("  stop with Ctrl-C\n", flush=True)


def _columns(text: str) -> int:
    """Terminal columns ``text`` takes: Chinese characters take two, so the banner's values line up."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _has_accounts(db: Path) -> bool:
    """Whether a reused demo folder already holds a panel account (then no setup token is printed)."""
    if not db.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return bool(conn.execute("SELECT count(*) FROM panel_users").fetchone()[0])
    except sqlite3.Error:
        return False


def camera_simulator_args(ports: DemoPorts) -> list[str]:
    return [
        "--rtsp-port", str(ports.rtsp), "--discovery-port", str(ports.discovery_udp), "--user", "admin",
        "--camera", f"CAM-B1-LANE=lane_a7_park@{ports.onvif_lane},scale=0.25,fps=5",
        "--camera", f"CAM-B2-LOBBY=door_b2_motorcycle@{ports.onvif_lobby},fps=5",
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


def write_modbus_scenario(workdir: Path, ports: DemoPorts) -> Path:
    """The shipped demo scenario with the converter on this run's port (its RTU link goes in via --rtu-dir)."""
    scenario = yaml.safe_load(MODBUS_SCENARIO.read_text(encoding="utf-8"))
    for converter in scenario.get("tcp", []):
        converter["port"] = ports.modbus_tcp
    path = workdir / "modbus-scenario.yaml"
    path.write_text(yaml.safe_dump(scenario, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def start_device_simulators(workdir: Path, secret_values: dict[str, str], ports: DemoPorts,
                            doc: dict[str, Any]) -> list[subprocess.Popen[bytes]]:
    """Every device simulator the demo estate talks to, each a separate process as a real device would be."""
    children = []
    try:
        scenario = write_modbus_scenario(workdir, ports)
        children.append(_spawn(workdir, "modbus-sim", ["simulators.modbus", "--scenario", str(scenario),
                                                       "--rtu-dir", str(workdir)], "READY"))
        # The password goes in the environment: not on the command line (the process list shows it),
        # and a generated one may start with "-", which argparse would take for an option.
        children.append(_spawn(workdir, "camera-sim", ["simulators.camera", *camera_simulator_args(ports)], "ready",
                               env={"CAMERA_SIM_PASSWORD": secret_values["camera_password"]}))
        for name, args, ready in _protocol_simulators(doc, workdir):
            children.append(_spawn(workdir, name, args, ready))
    except BaseException:
        for child in children:
            stop_process(child)
        raise
    return children


def _protocol_simulators(doc: dict[str, Any], workdir: Path) -> list[tuple[str, list[str], str]]:
    """The simulators of the buses beyond Modbus, at the run's config's ports and in its folder.

    3栋's DL/T 645 and CJ/T 188 meter lines, the fire panel's GB/T 26875.3 device, 4栋's MQTT smoke
    detector (with its Mosquitto) and the pump-room OPC-UA PLC.

    The transmission device is a client of the gateway, which starts after the simulators: it keeps
    retrying its connection (``--wait-s``), and is ready to wait for once it has started.
    """
    buses = {b["kind"]: b for b in doc["buses"]}
    out: list[tuple[str, list[str], str]] = []
    if "mqtt" in buses:  # a real Mosquitto and one NB-IoT smoke detector publishing through it
        out.append(("mqtt-sim", ["simulators.mqtt", "--start-broker", str(workdir / "mosquitto"), "--broker-port",
                                 str(buses["mqtt"]["port"]), "--smoke", "1", "--leak", "0", "--lift", "0",
                                 "--prefix", "estate/demo", "--interval", "10"], "READY"))
    if "opcua" in buses:
        port = buses["opcua"]["endpoint"].rsplit(":", 1)[1].split("/", 1)[0]
        out.append(("opcua-sim", ["simulators.opcua", "--folder", str(workdir / "opcua-plc"), "--port", port], "READY"))
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
