"""The gateway's OPC-UA client certificate: made on first use, kept in the store folder, shown for trust lists.

Why self-signed and generated here: a PLC's OPC-UA server trusts client certificates one by one
(the integrator drags the gateway's certificate into the PLC's trust list), so there is no CA to
ask; the certificate only has to stay the same across restarts, hence it lives beside the store
and is made once. It is regenerated only when missing or no longer valid (asyncua's helper checks
expiry and the application URI), and its SHA-1 thumbprint (what PLC tools display) is reported in
``CertificateInfo`` for the panel.
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass
from pathlib import Path

from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

CERT_NAME = "client_cert.der"
KEY_NAME = "client_key.pem"


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    cert_file: Path
    key_file: Path
    application_uri: str
    subject: str
    thumbprint_sha1: str
    not_after: str

    def as_dict(self) -> dict[str, str]:
        return {"cert_file": str(self.cert_file), "application_uri": self.application_uri, "subject": self.subject,
                "thumbprint_sha1": self.thumbprint_sha1, "not_after": self.not_after}


async def ensure_client_certificate(folder: Path, application_uri: str) -> CertificateInfo:
    """The client certificate in ``folder`` (created, with its key, when missing or invalid)."""
    folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once per session start, a local folder
    folder.chmod(0o700)  # noqa: ASYNC240
    cert_file, key_file = folder / CERT_NAME, folder / KEY_NAME
    await setup_self_signed_certificate(
        key_file, cert_file, application_uri, socket.gethostname(),
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"countryName": "CN", "organizationName": "estate-edge", "commonName": f"estate-edge {application_uri}"},
    )
    key_file.chmod(0o600)
    der = cert_file.read_bytes()
    cert = x509.load_der_x509_certificate(der)
    return CertificateInfo(
        cert_file, key_file, application_uri, cert.subject.rfc4514_string(),
        hashlib.sha1(der, usedforsecurity=False).hexdigest(), cert.not_valid_after_utc.isoformat(),
    )
