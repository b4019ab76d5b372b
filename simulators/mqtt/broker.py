"""A real Mosquitto broker on 127.0.0.1, started and stopped by whoever needs one (tests, bench, demo).

Why a launcher rather than an assumed broker: the tests must not depend on a system service, and
they restart the broker to prove reconnection and persistent sessions. ``MosquittoBroker`` writes
its own config into a working folder: a plain listener on a free port, optionally a TLS listener
with a private CA that requires client certificates (``with_tls``), persistence in the folder (so a
restart keeps sessions and queued QoS 1 messages), and the in-flight and queue limits callers set.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge.processes import held_ports


def free_port() -> int:
    """A port below the ephemeral range for the server to listen on (``edge.processes.held_ports``)."""
    with held_ports() as free:
        return free()


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A private CA, the broker's certificate for 127.0.0.1 / localhost, and one client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def make_tls_files(folder: Path) -> TlsFiles:
    """Generate a CA, a server certificate (SAN 127.0.0.1 and localhost) and a client certificate."""
    import ipaddress

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "estate-edge test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))

    def leaf(cn: str, server: bool) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])).issuer_name(ca_name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH if server
                                                         else x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key",
                     folder / "client.pem", folder / "client.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server_cert, server_key = leaf("127.0.0.1", True)
    client_cert, client_key = leaf("estate-edge-gateway", False)
    files.server_cert.write_bytes(server_cert)
    files.server_key.write_bytes(server_key)
    files.client_cert.write_bytes(client_cert)
    files.client_key.write_bytes(client_key)
    for key_file in (files.server_key, files.client_key):
        key_file.chmod(0o600)
    return files


class MosquittoBroker:
    """``with MosquittoBroker(folder) as broker:`` -> ``broker.port`` (anonymous), ``broker.tls_port`` (with TLS:
    client certificate required), ``broker.auth_port`` (with ``users``: user name and password required)."""

    def __init__(self, folder: Path, *, with_tls: bool = False, max_inflight: int = 1000,
                 max_queued: int = 0, persistence: bool = True, users: dict[str, str] | None = None,
                 port: int | None = None) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.tls = make_tls_files(folder / "tls") if with_tls else None
        self.tls_port = free_port() if with_tls else None
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self.persistence = persistence
        self.users = dict(users or {})
        self.auth_port = free_port() if self.users else None
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _config(self) -> str:
        lines = [
            "per_listener_settings true",
            f"user {getpass.getuser()}",  # as root Mosquitto would drop to 'mosquitto', who cannot read our folder
            f"max_inflight_messages {self.max_inflight}",
            f"max_queued_messages {self.max_queued}",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.folder}/",
            "autosave_interval 1",
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
        ]
        if self.users:
            lines += [f"listener {self.auth_port} 127.0.0.1", "allow_anonymous false",
                      f"password_file {self._password_file()}"]
        if self.tls is not None:
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                "allow_anonymous true",
                f"cafile {self.tls.ca}",
                f"certfile {self.tls.server_cert}",
                f"keyfile {self.tls.server_key}",
                "require_certificate true",
            ]
        return "\n".join(lines) + "\n"

    def _password_file(self) -> Path:
        """Mosquitto's hashed password file for ``users``, written with ``mosquitto_passwd``."""
        path = self.folder / "passwords"
        path.unlink(missing_ok=True)
        path.touch(mode=0o600)
        tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        for user, password in self.users.items():
            subprocess.run([tool, "-b", str(path), user, password], check=True, capture_output=True)
        return path

    def start(self) -> None:
        if not Path(self.binary).exists():
            raise RuntimeError("mosquitto is not installed (scripts/bootstrap installs it)")
        conf = self.folder / "mosquitto.conf"
        conf.write_text(self._config())
        log = (self.folder / "mosquitto.log").open("ab")
        self._proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        ports = [p for p in (self.port, self.tls_port, self.auth_port) if p]
        while ports:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", ports[0]), timeout=0.2):
                ports.pop(0)
                continue
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not start; see {self.folder / 'mosquitto.log'}")
            time.sleep(0.02)
        self.starts += 1

    def stop(self, *, kill: bool = False) -> None:
        """Stop the broker (SIGTERM saves its persistent sessions; ``kill`` does not)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
