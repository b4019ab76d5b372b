"""Camera logins: HTTP Basic or Digest (whichever the camera asks for), and telling a refused login apart.

Snapshots: cameras protect the snapshot URI with HTTP Digest (most) or Basic (many cheaper ones
and some NVRs). ``CameraAuth`` sends nothing secret until the camera's first ``401`` names its
scheme, then answers that scheme from then on: Digest when offered (the password never crosses the
wire), Basic only when it is the only scheme offered (the password crosses the LAN Base64-encoded;
logged once as a warning, as the installer should know).

A login the camera still refuses after answering its challenge is a ``CameraAuthError``: "wrong
user name or password" is a different fix from "camera unreachable", so the status says so.

RTSP: OpenCV's reader only says "cannot open". ``rtsp_login_refused`` asks the camera directly
(one ``DESCRIBE`` over TCP, answering a Basic or Digest challenge with the URL's credentials) and
is used after a failed open to report a refused login as such. RTSP frame on the wire::

    C->S  DESCRIBE rtsp://host:port/path RTSP/1.0 | CSeq: n | Accept: application/sdp
          [| Authorization: Digest username=..., realm=..., nonce=..., uri=..., response=...]
    S->C  RTSP/1.0 401 Unauthorized | CSeq: n | WWW-Authenticate: Digest realm="..", nonce=".."
"""

from __future__ import annotations

import base64
import hashlib
import logging
import socket
from collections.abc import Generator
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from edge.errors import DeviceProtocolError

log = logging.getLogger(__name__)


class CameraAuthError(DeviceProtocolError):
    """The camera refused our user name and password (HTTP or RTSP 401, ONVIF NotAuthorized)."""


def challenge_schemes(headers: list[str]) -> list[str]:
    """Lower-case auth schemes offered by ``WWW-Authenticate`` header values, in order."""
    return [h.strip().split(" ", 1)[0].lower() for h in headers if h.strip()]


class CameraAuth(httpx.Auth):
    """HTTP Basic or Digest, as the camera's challenge asks; the scheme is remembered per camera."""

    def __init__(self, username: str, password: str, *, name: str = "camera") -> None:
        self._basic = httpx.BasicAuth(username, password)
        self._digest = httpx.DigestAuth(username, password)
        self._scheme: str | None = None
        self._name = name

    @property
    def scheme(self) -> str | None:
        """``"digest"`` or ``"basic"`` once the camera has asked; None before."""
        return self._scheme

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._scheme == "basic":
            yield from self._basic.auth_flow(request)
            return
        if self._scheme == "digest":
            yield from self._digest.auth_flow(request)
            return
        response = yield request
        if response.status_code != 401:
            return
        offered = challenge_schemes(response.headers.get_list("www-authenticate"))
        if "digest" in offered:
            self._scheme = "digest"
            yield from self._digest.auth_flow(request)
        elif "basic" in offered:
            self._scheme = "basic"
            log.warning("%s: the camera asks for HTTP Basic authentication: its password crosses the "
                        "network only Base64-encoded", self._name)
            yield from self._basic.auth_flow(request)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _params(header: str) -> dict[str, str]:
    """``key="value", key=value`` pairs of a challenge (quoted commas kept)."""
    out: dict[str, str] = {}
    current, quoted = "", False
    for ch in header + ",":
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            key, _, value = current.strip().partition("=")
            if key:
                out[key.strip().lower()] = value.strip().strip('"')
            current = ""
        else:
            current += ch
    return out


def _authorization(challenge: str, user: str, password: str, uri: str) -> str | None:
    scheme, _, rest = challenge.strip().partition(" ")
    if scheme.lower() == "basic":
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    if scheme.lower() != "digest":
        return None
    p = _params(rest)
    ha1 = _md5(f"{user}:{p.get('realm', '')}:{password}")
    ha2 = _md5(f"DESCRIBE:{uri}")
    response = _md5(f"{ha1}:{p.get('nonce', '')}:{ha2}")
    return (f'Digest username="{user}", realm="{p.get("realm", "")}", nonce="{p.get("nonce", "")}", '
            f'uri="{uri}", response="{response}"')


def _describe(sock: socket.socket, uri: str, cseq: int, authorization: str | None) -> tuple[int, list[str]]:
    lines = [f"DESCRIBE {uri} RTSP/1.0", f"CSeq: {cseq}", "Accept: application/sdp", "User-Agent: estate-edge"]
    if authorization:
        lines.append(f"Authorization: {authorization}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > 65536:
            break
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2) if head else []
    if len(parts) < 2 or not parts[0].startswith("RTSP/") or not parts[1].isdigit():
        raise ValueError(f"not an RTSP reply: {head[0][:80] if head else ''!r}")
    challenges = [h.split(":", 1)[1].strip() for h in head[1:] if h.lower().startswith("www-authenticate:")]
    # Skip the body (the SDP) if any: this socket is closed right after anyway.
    return int(parts[1]), challenges


def rtsp_login_refused(url: str, timeout_s: float = 3.0) -> bool:
    """True when the RTSP server at ``url`` refuses the URL's credentials (401 after answering).

    False when it accepts them, needs none, or cannot be asked (connection refused, not RTSP):
    then the failure was not a login problem. Never raises.
    """
    parts = urlsplit(url)
    if parts.scheme != "rtsp" or not parts.hostname:
        return False
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    host = parts.hostname
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    uri = urlunsplit(("rtsp", netloc, parts.path or "/", parts.query, ""))
    try:
        with socket.create_connection((host, parts.port or 554), timeout=timeout_s) as sock:
            status, challenges = _describe(sock, uri, 1, None)
            if status != 401:
                return False
            if not user or not challenges:
                return True
            ordered = sorted(challenges, key=lambda c: 0 if c.lower().startswith("digest") else 1)
            authorization = _authorization(ordered[0], user, password, uri)
            if authorization is None:
                return False
            status, _ = _describe(sock, uri, 2, authorization)
            return status == 401
    except (OSError, ValueError):
        return False
