"""The panel as the daemon runs it: ``serve_panel`` on a real 127.0.0.1 socket inside the caller's loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from edge.panel import PanelStartError, create_app, serve_panel
from edge.panel.roles import Role
from edge.panel.security import SESSION_COOKIE
from edge.pipeline import Pipeline
from edge.records import DeviceStatus, Reading
from edge.store import Store
from simulators.platform.tls import make_tls_files
from tests.helpers.panel import PASSWORD, cheap_passwords, csrf_from, panel_settings, write_panel_estate
from tests.helpers.platform import free_port
from tests.helpers.sql import sql_rows


async def _login(client: httpx.AsyncClient, username: str) -> None:
    page = await client.get("/login")
    response = await client.post("/login", data={"username": username, "password": PASSWORD,
                                                 "csrf_token": csrf_from(page.text)})
    assert response.status_code == 303


async def test_serves_pages_feeds_live_values_and_flushes_on_shutdown(tmp_path: Path) -> None:
    config_path, secrets_path = write_panel_estate(tmp_path)
    port = free_port()
    async with Store(tmp_path / "edge.db", maintenance_interval_s=0, batch_max_delay_ms=2) as store:
        pipeline = Pipeline(store)
        app = create_app(store, config_path, secrets_path, pipeline=pipeline, passwords=cheap_passwords(),
                         settings=panel_settings(rollup_flush_s=3600))
        started = asyncio.Event()
        task = asyncio.create_task(serve_panel(app, "127.0.0.1", port, started=started))
        await asyncio.wait_for(started.wait(), 10)
        await app.state.panel.users.create("staff", PASSWORD, Role.OPERATOR)
        now = datetime.now(UTC)
        await pipeline.readings([Reading("hyd-1", "pressure", 0.41 + i / 1000, "MPa", now - timedelta(minutes=29 - i))
                                 for i in range(30)])
        await pipeline.device_status(DeviceStatus("wm-2", False, now, "no answer"))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=10) as client:
            await _login(client, "staff")
            device = (await client.get("/api/v1/devices/hyd-1")).json()
            assert device["state"] == "online" and device["latest"][0]["value"] == pytest.approx(0.439)
            assert (await client.get("/api/v1/devices/wm-2")).json()["state"] == "offline"
            page = await client.get("/devices/hyd-1")
            assert page.status_code == 200 and "<polyline" in page.text
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            assert (await client.get("/healthz")).json() == {"ok": True}
        assert await sql_rows(store, "SELECT count(*) FROM panel_rollup_5m") == [(0,)]  # not flushed yet
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # The app's shutdown flushed the chart rollups and the latest values.
        assert (await sql_rows(store, "SELECT sum(n) FROM panel_rollup_5m")) == [(30,)]
        assert (await sql_rows(store, "SELECT value FROM panel_latest WHERE device_id='hyd-1'")) == [(pytest.approx(0.439),)]
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient(trust_env=False) as client:
                await client.get(f"http://127.0.0.1:{port}/healthz")


async def test_port_in_use_raises_and_leaves_the_loop_running(tmp_path: Path) -> None:
    config_path, secrets_path = write_panel_estate(tmp_path)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        async with Store(tmp_path / "edge.db", maintenance_interval_s=0) as store:
            app = create_app(store, config_path, secrets_path, passwords=cheap_passwords())
            with pytest.raises(PanelStartError, match=f"127.0.0.1:{port}"):
                await asyncio.wait_for(serve_panel(app, "127.0.0.1", port), 15)
            await asyncio.sleep(0)  # the loop is still alive (uvicorn's sys.exit did not escape)
            assert await store.count("alarms") == 0


async def test_https_marks_cookies_secure(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "tls")
    config_path, secrets_path = write_panel_estate(tmp_path)
    port = free_port()
    async with Store(tmp_path / "edge.db", maintenance_interval_s=0, batch_max_delay_ms=2) as store:
        app = create_app(store, config_path, secrets_path, passwords=cheap_passwords(), settings=panel_settings())
        started = asyncio.Event()
        task = asyncio.create_task(serve_panel(app, "127.0.0.1", port, tls_cert=tls.cert, tls_key=tls.key,
                                               started=started))
        await asyncio.wait_for(started.wait(), 10)
        try:
            await app.state.panel.users.create("staff", PASSWORD, Role.OPERATOR)
            trusted = ssl.create_default_context(cafile=str(tls.ca_cert))
            async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=trusted, trust_env=False,
                                         timeout=10) as client:
                page = await client.get("/login")
                pre = next(h for h in page.headers.get_list("set-cookie") if h.startswith("edge_pre="))
                assert "Secure" in pre and "HttpOnly" in pre
                assert page.headers["strict-transport-security"].startswith("max-age=")  # HSTS over TLS (issue 10)
                response = await client.post("/login", data={"username": "staff", "password": PASSWORD,
                                                             "csrf_token": csrf_from(page.text)})
                cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
                assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
                assert (await client.get("/api/v1/me")).json()["username"] == "staff"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
