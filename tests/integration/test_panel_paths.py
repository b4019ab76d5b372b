"""Odd request paths sent raw to the panel on a real socket: never a 5xx, never a file outside its place.

httpx and browsers normalise paths before sending (``..`` segments removed, some bytes escaped), so
the unit tests cannot send everything an attacker can. Here each request line is written to the
socket byte for byte, as a scanner would, against the panel served by uvicorn as the daemon runs it.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from edge.panel.roles import Role
from edge.panel.security import SESSION_COOKIE
from tests.helpers.panel import PanelServer, alarm

RAW_PATHS = [
    "/evidence/%00x.jpg", "/evidence/x%00.jpg", "/evidence/../estate.yaml", "/evidence/..%2Festate.yaml",
    "/evidence/%2e%2e/estate.yaml", "/evidence/..%5cestate.yaml", "/evidence/" + "a" * 4000 + ".jpg",
    "/evidence/%C0%AE%C0%AE%2Fetc%2Fpasswd", "/evidence/%ff.jpg", "/evidence/good.jpg%00.png",
    "/alarms/%00", "/alarms/..", "/alarms/%2e%2e", "/devices/%00", "/devices/../../etc/passwd",
    "/cameras/%00/frame.jpg", "/cameras/..%2F..%2Fetc/frame.jpg", "/tools/backups/%00",
    "/tools/backups/../../estate.yaml", "/api/v1/devices/%00", "/api/v1/alarms/%00",
    "/api/v1/devices/" + "d" * 5000, "/api/v1/cameras/%2e%2e", "/static/%00x.css", "/static/../estate.yaml",
    "/static/..%2F..%2Festate.yaml", "/static/" + "s" * 5000, "//evidence//good.jpg", "/evidence/good.jpg/",
]


# Raw segments for every GET route with a path parameter (sent unnormalised, unlike httpx would).
RAW_SEGMENTS = ["%00", "x%00.jpg", "..", "%2e%2e", "..%2f..%2fetc%2fpasswd", "a%5cb", "%01", "%7f", "%ff%fe",
                "n" * 300, "%2e"]


def _get_templates() -> list[str]:
    from edge.panel import routes

    modules = [getattr(routes, name) for name in routes.__all__]
    return sorted({r.path for m in modules for r in m.router.routes
                   if isinstance(r, APIRoute) and "{" in r.path and "GET" in r.methods})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PanelServer]:
    with PanelServer(tmp_path_factory.mktemp("paths")) as s:
        s.add_user("viewer-raw", Role.VIEWER)
        s.call(s.store.append_alarm_records([alarm("A1")]))  # type: ignore[union-attr]
        evidence = Path(s.store.evidence_dir)  # type: ignore[union-attr]
        evidence.mkdir(parents=True, exist_ok=True)
        (evidence / "good.jpg").write_bytes(b"\xff\xd8\xff\xd9")
        yield s


def _raw_get(port: int, path: str, cookie: str) -> tuple[int, bytes]:
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n"
               "Connection: close\r\n\r\n").encode("latin-1")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    return status, data


def test_raw_odd_paths_never_answer_a_server_error_or_a_foreign_file(server: PanelServer) -> None:
    with server.client() as client:
        server.login(client, "viewer-raw")
        cookie = f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"
    status, _ = _raw_get(server.port, "/evidence/good.jpg", cookie)
    assert status == 200
    secret_line = b"platform_client_secret"
    answers = {}
    for path in RAW_PATHS:
        status, body = _raw_get(server.port, path, cookie)
        answers[path[:60]] = status
        assert secret_line not in body and b"estate config written by the panel tests" not in body, path
        assert b"Traceback" not in body, path
    bad = {path: status for path, status in answers.items() if not 300 <= status < 500}
    assert bad == {}, bad


def test_every_get_route_with_a_path_parameter_survives_raw_odd_segments(server: PanelServer) -> None:
    with server.client() as client:
        server.login(client, "viewer-raw")
        cookie = f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"
    templates = _get_templates()
    assert len(templates) >= 8
    bad = {}
    for template in templates:
        for segment in RAW_SEGMENTS:
            path = re.sub(r"\{[^}]+\}", segment, template)
            status, body = _raw_get(server.port, path, cookie)
            if not 300 <= status < 500 or b"Traceback" in body:
                bad[path[:80]] = status
    assert bad == {}, bad
