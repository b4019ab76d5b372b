"""Running the panel inside the daemon's event loop: uvicorn as one task, stopped cleanly.

``serve_panel(app, host, port)`` is meant to be one named task of the daemon's TaskGroup. uvicorn's
own ``serve`` would install SIGINT/SIGTERM handlers and call ``sys.exit`` when it can not bind; inside
the daemon both are wrong (the daemon owns the signals and its own exit), so ``_EmbeddedServer``
does neither: a bind failure raises ``PanelStartError`` naming the address, and cancelling the task
makes uvicorn stop accepting, finish open requests for up to ``graceful_s`` and run the app's
shutdown (which flushes the chart rollups) before the cancellation completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
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


async def serve_panel(app: FastAPI, host: str, port: int, *, tls_cert: Path | None = None,
                      tls_key: Path | None = None, graceful_s: float = 5.0,
                      started: asyncio.Event | None = None) -> None:
    """Serve until cancelled. ``started`` is set once the socket listens (tests and the daemon wait on it)."""
    config = uvicorn.Config(
        app, host=host, port=port, lifespan="on", log_config=None, access_log=False, server_header=False,
        proxy_headers=False, timeout_graceful_shutdown=graceful_s, ws="none",
        ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None,
    )
    server = _EmbeddedServer(config)
    where = f"{'https' if tls_cert else 'http'}://{host}:{port}"

    async def watch_started() -> None:
        while not server.started:
            await asyncio.sleep(0.02)
        log.info("panel listening on %s", where)
        if started is not None:
            started.set()

    watcher = asyncio.create_task(watch_started(), name="panel-started")
    serving = asyncio.create_task(server.serve(), name="panel-uvicorn")
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        raise
    finally:
        await cancel_and_wait(watcher)
    if server.failed or not server.started:
        raise PanelStartError(f"panel could not start on {where} (see the log above)")
