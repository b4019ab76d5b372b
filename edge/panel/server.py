"""Running the panel inside the daemon's event loop: uvicorn as one task, stopped cleanly.

``serve_panel(app, host, port)`` is meant to be one named task of the daemon's TaskGroup. uvicorn's
own ``serve`` would install SIGINT/SIGTERM handlers and call ``sys.exit`` when it can not bind; inside
the daemon both are wrong (the daemon owns the signals and its own exit), so ``_EmbeddedServer``
does neither, and the two start-up failures an installer meets are found before uvicorn runs and
raised as ``PanelStartError`` with one line naming what to fix: the listening sockets are bound
here (a port in use names the address and ``panel.port``), and the TLS certificate and key are
loaded here (a missing or mismatched file names both paths). Cancelling the task makes uvicorn stop
accepting, finish open requests for up to ``graceful_s`` and run the app's shutdown (which flushes
the chart rollups) before the cancellation completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
from collections.abc import Generator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from edge.errors import EdgeError
from edge.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class PanelStartError(EdgeError):
    """The panel could not start (address in use, bad certificate, app startup failed)."""


class _EmbeddedServer(uvicorn.Server):
    failed = False

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the daemon owns the process's signals

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn calls sys.exit() when it can not bind or the app's startup fails. A SystemExit
        # escaping an asyncio task stops the whole event loop (the daemon!), so it ends here.
        try:
            await super().serve(sockets)
        except SystemExit:
            self.failed = True


def bind_sockets(host: str, port: int) -> list[socket.socket]:
    """Listening-ready sockets for every address ``host`` resolves to (as asyncio's create_server binds).

    Raises ``PanelStartError`` naming ``host:port`` when one cannot be bound (port in use, address not
    on this machine, no permission for a port below 1024), after closing the others.
    """
    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PanelStartError(f"panel cannot listen on {where}: unknown host ({exc.strerror}); check panel.host") from exc
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _name, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        hint = {errno.EADDRINUSE: "another program already listens there; stop it or change panel.port",
                errno.EACCES: "no permission for this port; use a port above 1024 or change panel.port",
                errno.EADDRNOTAVAIL: "this machine has no such address; check panel.host"}.get(exc.errno or 0, "")
        raise PanelStartError(f"panel cannot listen on {where}: {exc.strerror}" + (f" ({hint})" if hint else "")) \
            from exc
    return sockets


async def serve_panel(app: FastAPI, host: str, port: int, *, tls_cert: Path | None = None,
                      tls_key: Path | None = None, graceful_s: int = 5,
                      started: asyncio.Event | None = None) -> None:
    """Serve until cancelled. ``started`` is set once the socket listens (tests and the daemon wait on it)."""
    config = uvicorn.Config(
        app, host=host, port=port, lifespan="on", log_config=None, access_log=False, server_header=False,
        proxy_headers=False, timeout_graceful_shutdown=graceful_s, ws="none",
        ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None,
    )
    where = f"{'https' if tls_cert else 'http'}://{host}:{port}"
    try:
        config.load()  # loads the TLS certificate and key now, so a bad pair is named here
    except (OSError, ssl.SSLError) as exc:
        raise PanelStartError(f"panel TLS certificate {tls_cert} / key {tls_key} cannot be loaded: "
                              f"{getattr(exc, 'strerror', None) or exc}") from exc
    sockets = bind_sockets(host, port)
    server = _EmbeddedServer(config)

    async def watch_started() -> None:
        while not server.started:
            await asyncio.sleep(0.02)
        log.info("panel listening on %s", where)
        if started is not None:
            started.set()

    watcher = asyncio.create_task(watch_started(), name="panel-started")
    serving = asyncio.create_task(server.serve(sockets), name="panel-uvicorn")
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        raise
    finally:
        await cancel_and_wait(watcher)
        for sock in sockets:
            sock.close()
    if server.failed or not server.started:
        raise PanelStartError(f"panel could not start on {where} (see the log above)")
