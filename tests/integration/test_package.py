"""The Debian package as an installer uses it, in a fresh root: build, install, check, run, save, remove, reinstall.

The fresh root is an overlay over this machine's ``/`` in a private mount namespace (``unshare -m``):
the root sees this machine's Debian (Python 3.11, apt, dpkg, systemd-analyze) but every change the
package makes lands in the overlay's upper folder, so nothing reaches the host. A debootstrap chroot
would be the same but take minutes. systemd is not PID 1 here, so the unit is not started by
systemd: the daemon is started the way the unit starts it (same user, same command line) inside a
simulated ``ProtectSystem=strict``: the whole root read-only except the unit's ``ReadWritePaths`` and
``StateDirectory`` (bind mounts, as systemd makes them), a private /tmp, and a ``$NOTIFY_SOCKET``
this test listens on (so ``Type=notify`` and the watchdog are real datagrams). The unit file itself
is checked by ``systemd-analyze verify`` and ``systemd-analyze security --offline=true`` in the root.

Needs root, overlayfs, dpkg-deb, apt-get, systemd-analyze and python3.11 (the package's Depends);
skipped with the reason where any is missing. The session fixture builds the .deb once with
``scripts/package`` (30-60 s on two busy cores, with the wheels from a local index); the test itself
takes 50-100 s, most of it dpkg unpacking and removing the venv's ~8,000 files (without per-file fsync) in the overlay.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "estate-edge.service"
VENV_PYTHON = "/opt/estate-edge/venv/bin/python"
CONFIG = "/etc/estate-edge/estate.yaml"
SECRETS = "/etc/estate-edge/secrets.yaml"
DB = "/var/lib/estate-edge/estate-edge.db"
# apt as an installer runs it, but without dpkg's fsync per file: the root is thrown away.
APT = ["apt-get", "-y", "-q", "-o", "Dpkg::Options::=--force-unsafe-io", "-o", "Dpkg::Use-Pty=0"]

# Runs as root in a new mount namespace: mount the overlay root (and, with $RW set, make it read-only
# except the folders in $RW, as ProtectSystem=strict + ReadWritePaths + PrivateTmp do), then chroot.
_ENTER = r"""
set -e
base=$1; debs=$2; rw=$3; shift 3
m=$base/merged
mkdir -p "$base/upper" "$base/work" "$m"
mount -t overlay overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$m"
mount --rbind /dev "$m/dev"; mount --bind /proc "$m/proc"; mount --bind /sys "$m/sys"
mkdir -p "$m/mnt/debs"; mount --bind "$debs" "$m/mnt/debs"
if [ -n "$rw" ]; then
    for path in $rw; do mount --bind "$m$path" "$m$path"; done
    mount -t tmpfs tmpfs "$m/tmp"
    mount -o remount,bind,ro "$m"
fi
exec chroot "$m" "$@"
"""


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (mount namespaces, overlayfs, chroot)"
    for tool in ("dpkg-deb", "apt-get", "systemd-analyze", "unshare", "chroot", "setpriv", "/usr/bin/python3.11"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/bootstrap installs it)"
    probe = Path("/tmp") / f"estate-edge-overlay-probe-{os.getpid()}"
    try:
        for sub in ("u", "w", "m"):
            (probe / sub).mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["unshare", "-m", "--propagation", "private", "mount", "-t", "overlay", "overlay", "-o",
                               f"lowerdir=/,upperdir={probe}/u,workdir={probe}/w", str(probe / "m")],
                              capture_output=True, text=True, timeout=30)
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    if done.returncode != 0:
        return f"overlayfs over / is not available here: {done.stderr.strip()}"
    return None


_why = _missing()
pytestmark = [pytest.mark.package, pytest.mark.skipif(_why is not None, reason=_why or "")]


class Root:
    """A fresh root over this machine's /; changes land in ``upper`` (see the module docstring)."""

    def __init__(self, base: Path, debs: Path) -> None:
        self.base = base
        self.debs = debs
        base.mkdir(parents=True, exist_ok=True)

    def upper(self, path: str) -> Path:
        """Where a file the package (or the daemon) created in the root lies on this machine."""
        return self.base / "upper" / path.lstrip("/")

    def argv(self, command: list[str], *, sandbox: list[str] | None = None, user: str | None = None,
             env: dict[str, str] | None = None) -> list[str]:
        clean = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive",
                 "HOME": "/var/lib/estate-edge" if user else "/root", **(env or {})}
        inner = ["env", "-i", *(f"{k}={v}" for k, v in clean.items())]
        if user:
            inner += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--no-new-privs", "--"]
        rw = " ".join(sandbox) if sandbox is not None else ""
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", _ENTER, "enter",
                str(self.base), str(self.debs), rw, *inner, *command]

    def run(self, command: list[str], *, check: bool = True, input: str | None = None, timeout: float = 180,
            **kwargs: object) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.argv(command, **kwargs), capture_output=True, text=True, input=input,  # type: ignore[arg-type]
                              timeout=timeout, cwd="/")
        if check and done.returncode != 0:
            raise AssertionError(f"{command} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def sh(self, script: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return self.run(["sh", "-c", script], **kwargs)  # type: ignore[arg-type]


def unit_sandbox() -> list[str]:
    """The writable folders of the unit under ProtectSystem=strict: its ReadWritePaths and StateDirectory."""
    text = UNIT.read_text(encoding="utf-8")
    assert re.search(r"^ProtectSystem=strict$", text, re.M), "the unit must keep ProtectSystem=strict"
    rw = [p for line in re.findall(r"^ReadWritePaths=(.*)$", text, re.M) for p in line.split()]
    rw += [f"/var/lib/{d}" for line in re.findall(r"^StateDirectory=(.*)$", text, re.M) for d in line.split()]
    return rw


@pytest.fixture(scope="session")
def debs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The package from scripts/package, and the same package as the next revision (an upgrade)."""
    out = tmp_path_factory.mktemp("debs")
    started = time.monotonic()
    done = subprocess.run([str(REPO / "scripts" / "package")], env={**os.environ, "OUT": str(out)},
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(f"scripts/package took {time.monotonic() - started:.0f} s: {done.stdout.strip().splitlines()[-1]}")
    (first,) = out.glob("estate-edge_*.deb")
    # The next revision, repacked from the first (rebuilding would take as long again).
    tree = tmp_path_factory.mktemp("repack") / "tree"
    subprocess.run(["dpkg-deb", "-R", str(first), str(tree)], check=True, timeout=300)
    control = tree / "DEBIAN" / "control"
    version = re.search(r"^Version: (.*)-(\d+)$", control.read_text(), re.M)
    assert version is not None
    control.write_text(control.read_text().replace(version.group(0),
                                                   f"Version: {version.group(1)}-{int(version.group(2)) + 1}"))
    second = out / first.name.replace(f"-{version.group(2)}_", f"-{int(version.group(2)) + 1}_")
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zzstd", "-z1", "-b", str(tree), str(second)], check=True,
                   capture_output=True, timeout=300)
    shutil.rmtree(tree)
    return first, second


@pytest.fixture
def root(tmp_path: Path, debs: tuple[Path, Path]) -> Iterator[Root]:
    base = Path("/tmp") / f"estate-edge-root-{os.getpid()}-{secrets.token_hex(4)}"  # not under the overlay's own /tmp view
    yield Root(base, debs[0].parent)
    shutil.rmtree(base, ignore_errors=True)


def _test_config() -> str:
    """A config that passes check and raises an alarm by itself: a synthetic meter that never answers."""
    return """\
estate: {id: EST-PKG-01, name: 打包测试花园, gateway_id: GW-PKG-01, timezone: Asia/Shanghai}
platform: {url: "https://127.0.0.1:9", client_id: gateway, client_secret: !secret platform_client_secret, enabled: false}
store: {path: /var/lib/estate-edge/estate-edge.db, evidence_dir: /var/lib/estate-edge/evidence, batch_max_delay_ms: 5}
panel: {enabled: false}
buses:
  - {kind: synthetic, id: syn, fail_devices: [PKG-EM-02]}
devices:
  - {id: PKG-EM-01, name: 1号电表, bus: syn, category: electricity, location: {building: 1栋}, poll_interval_s: 0.2}
  - {id: PKG-EM-02, name: 2号电表, bus: syn, category: electricity, location: {building: 1栋}, poll_interval_s: 0.05}
"""


def _open_alarms(root: Root) -> list[tuple[str, str | None]]:
    with sqlite3.connect(root.upper(DB)) as conn:
        return [(str(r[0]), r[1]) for r in conn.execute("SELECT code, device_id FROM alarms WHERE is_open=1 ORDER BY code")]


def _notify_socket() -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"estate-edge-test-{os.getpid()}-{secrets.token_hex(4)}"
    sock.bind("\0" + name)  # abstract: reachable from the root's mount namespace
    return sock, "@" + name


def _receive_until(sock: socket.socket, wanted: str, timeout_s: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            seen.extend(sock.recv(4096).decode().splitlines())
        except TimeoutError:
            break
        if wanted in seen:
            return seen
    raise AssertionError(f"no {wanted} from the daemon; got {seen}")


def _run_daemon_as_the_unit(root: Root) -> None:
    """Start the daemon as the unit would, see READY and WATCHDOG, wait for its alarm, stop it, see STOPPING."""
    sock, address = _notify_socket()
    log = root.base / "daemon.log"
    with sock, open(log, "w") as out:
        proc = subprocess.Popen(
            root.argv(["/opt/estate-edge/venv/bin/estate-edge", "run", CONFIG, "--secrets", SECRETS],
                      sandbox=unit_sandbox(), user="estate-edge",
                      env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"}),
            stdout=out, stderr=subprocess.STDOUT, cwd="/")
        try:
            assert "READY=1" in _receive_until(sock, "READY=1", 60), log.read_text()
            assert "WATCHDOG=1" in _receive_until(sock, "WATCHDOG=1", 10)
            deadline = time.monotonic() + 30
            while not _open_alarms(root) and time.monotonic() < deadline:
                _receive_until(sock, "WATCHDOG=1", 10)  # still healthy while we wait
            assert ("device.offline", "PKG-EM-02") in _open_alarms(root), log.read_text()
            proc.terminate()
            assert "STOPPING=1" in _receive_until(sock, "STOPPING=1", 30)
            assert proc.wait(timeout=60) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


_SAVE = """
import asyncio, sys
from pathlib import Path
from edge.panel.config_files import ConfigFiles, ConfigNotWritable
files = ConfigFiles(Path(sys.argv[1]), Path(sys.argv[2]))
text = files.read_text().replace("打包测试花园", "打包测试花园（面板已改）")
try:
    saved = asyncio.run(files.save(text))
except ConfigNotWritable as exc:
    print("NOT WRITABLE:", exc.problems[0])
    sys.exit(3)
print("SAVED, backup", saved.backup)
"""


def test_install_run_save_remove_reinstall_upgrade_purge(root: Root, debs: tuple[Path, Path]) -> None:
    first, second = debs
    # Install: apt resolves the Depends from this machine's Debian; the unit is enabled, not started.
    installed = root.run([*APT, "install", f"/mnt/debs/{first.name}"])
    assert "not pass the check yet" not in installed.stdout  # systemd is not running here: nothing to start
    assert "edit /etc/estate-edge/estate.yaml" in installed.stdout
    assert root.upper("/etc/systemd/system/multi-user.target.wants/estate-edge.service").is_symlink()
    modes = root.sh("stat -c '%n %U:%G %a' /etc/estate-edge /etc/estate-edge/estate.yaml /etc/estate-edge/secrets.yaml "
                    "/var/lib/estate-edge /var/lib/estate-edge/models").stdout.splitlines()
    assert modes == ["/etc/estate-edge root:estate-edge 2770", "/etc/estate-edge/estate.yaml root:estate-edge 640",
                     "/etc/estate-edge/secrets.yaml estate-edge:estate-edge 600",
                     "/var/lib/estate-edge estate-edge:estate-edge 750",
                     "/var/lib/estate-edge/models estate-edge:estate-edge 750"]
    version = root.run(["estate-edge", "--version"]).stdout.strip()
    assert version == f"estate-edge {first.name.split('_')[1].split('-')[0]}"
    # Runtime dependencies only: no test stack, no training extra.
    listing = root.run(["ls", "/opt/estate-edge/venv/lib/python3.11/site-packages"]).stdout
    for absent in ("pytest", "playwright", "hypothesis", "jax", "ruff", "schemathesis"):
        assert absent not in listing, absent

    # The shipped example does not pass the check until the installer fills in the secret.
    shipped = root.run(["estate-edge", "check", CONFIG, "--secrets", SECRETS], user="estate-edge", check=False)
    assert shipped.returncode == 1
    assert "platform_client_secret" in shipped.stderr

    # The unit file as installed: systemd's own checks.
    verify = root.run(["systemd-analyze", "verify", "/lib/systemd/system/estate-edge.service"], check=False)
    assert verify.returncode == 0, verify.stderr
    security = root.run(["systemd-analyze", "security", "--offline=true", "--threshold=25",
                         "/lib/systemd/system/estate-edge.service"], check=False)
    assert security.returncode == 0, security.stdout[-2000:]
    exposure = re.search(r"Overall exposure level for estate-edge.service: ([\d.]+) (\w+)", security.stdout)
    assert exposure is not None and float(exposure.group(1)) <= 2.5, security.stdout[-500:]

    # Device access narrowed to the configured serial ports: the package's command prints the drop-in.
    root.sh("printf 'buses:\\n  - {kind: modbus_rtu, id: A, port: /dev/ttyS0, baudrate: 9600}\\n' > /root/serial.yaml")
    dropin = root.run(["estate-edge-serial-dropin", "/root/serial.yaml"]).stdout
    assert "[Service]\nDeviceAllow=\nDeviceAllow=/dev/ttyS0 rw\n" in dropin
    root.sh("mkdir -p /etc/systemd/system/estate-edge.service.d && "
            "cat > /etc/systemd/system/estate-edge.service.d/serial-ports.conf", input=dropin)
    verify = root.run(["systemd-analyze", "verify", "estate-edge.service"], check=False)
    assert verify.returncode == 0, verify.stderr

    # The installer writes the estate's config and secret; now it passes, as the unit's user.
    root.sh(f"cat > {CONFIG}", input=_test_config())
    root.sh(f"printf 'platform_client_secret: %s\\n' {secrets.token_urlsafe(12)} > {SECRETS}")
    passed = root.run(["estate-edge", "check", CONFIG, "--secrets", SECRETS], user="estate-edge")
    assert "OK" in passed.stdout

    # Run under the unit's restrictions: READY, WATCHDOG, an alarm, STOPPING, exit 0.
    _run_daemon_as_the_unit(root)
    assert root.sh("touch /etc/probe", sandbox=unit_sandbox(), check=False).stderr.count("Read-only file system") == 1

    # The panel's save (replace config, zone editor) under the same restrictions: written, backed up.
    saved = root.run([VENV_PYTHON, "-I", "-c", _SAVE, CONFIG, SECRETS], sandbox=unit_sandbox(), user="estate-edge")
    assert "SAVED, backup /etc/estate-edge/estate.yaml.bak-" in saved.stdout
    # A unit without ReadWritePaths for the config folder gets a one-line reason, and nothing changes.
    refused = root.run([VENV_PYTHON, "-I", "-c", _SAVE, CONFIG, SECRETS], sandbox=["/var/lib/estate-edge"],
                       user="estate-edge", check=False)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "Read-only file system" in refused.stdout and "ReadWritePaths=/etc/estate-edge" in refused.stdout
    config_text = root.upper(CONFIG).read_text(encoding="utf-8")
    assert "打包测试花园（面板已改）" in config_text and "（面板已改）（面板已改）" not in config_text
    secrets_text = root.upper(SECRETS).read_text()
    db_bytes = root.upper(DB).read_bytes()
    alarms = _open_alarms(root)

    # Remove: the program goes; config, data and the user stay.
    root.run([*APT, "remove", "estate-edge"])
    assert root.sh("dpkg-query -W -f='${Status}' estate-edge").stdout == "deinstall ok config-files"
    assert root.run(["test", "-e", "/opt/estate-edge"], check=False).returncode == 1
    assert root.run(["test", "-e", "/usr/bin/estate-edge"], check=False).returncode == 1
    assert root.upper(CONFIG).read_text(encoding="utf-8") == config_text
    assert root.upper(DB).read_bytes() == db_bytes

    # Install again, then upgrade to the next revision: config, secrets, data and open alarms are kept.
    for deb in (first, second):
        root.run([*APT, "install", f"/mnt/debs/{deb.name}"])
        assert root.upper(CONFIG).read_text(encoding="utf-8") == config_text
        assert root.upper(SECRETS).read_text() == secrets_text
        assert root.upper(DB).read_bytes() == db_bytes
        assert _open_alarms(root) == alarms
        assert root.upper("/etc/systemd/system/multi-user.target.wants/estate-edge.service").is_symlink()
        root.run(["estate-edge", "check", CONFIG, "--secrets", SECRETS], user="estate-edge")
    assert root.sh("dpkg-query -W -f='${Version}' estate-edge").stdout.endswith("-2")
    _run_daemon_as_the_unit(root)  # the upgraded program runs on the kept store

    # Purge: config and data go too.
    root.run([*APT, "purge", "estate-edge"])
    assert root.run(["test", "-e", "/etc/estate-edge"], check=False).returncode == 1
    assert root.run(["test", "-e", "/var/lib/estate-edge"], check=False).returncode == 1
