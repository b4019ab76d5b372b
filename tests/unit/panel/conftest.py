"""The panel in-process: a real Store file, the real app and its lifespan, httpx over ASGI.

Nothing is mocked: requests go through the whole ASGI stack (middleware, CSRF, sessions, templates)
and every write lands in the SQLite file. Only the network socket is skipped here; the integration
and browser tests run the same app on a real 127.0.0.1 socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.clock import ManualClock
from edge.config.panel import PanelConfig
from edge.panel import PanelHooks, create_app
from edge.panel.context import PanelContext
from edge.panel.roles import Role
from edge.store import Store
from tests.helpers.panel import PASSWORD, cheap_passwords, csrf_from, panel_settings, write_panel_estate

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai


@dataclass
class Panel:
    app: Any
    store: Store
    client: httpx.AsyncClient
    clock: ManualClock
    config_path: Path
    secrets_path: Path
    hooks: PanelHooks
    reloads: list[int] = field(default_factory=list)

    @property
    def ctx(self) -> PanelContext:
        return self.app.state.panel  # type: ignore[no-any-return]

    def new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://panel.test")

    async def add_user(self, username: str, role: Role, password: str = PASSWORD) -> None:
        await self.ctx.users.create(username, password, role)

    async def login(self, username: str, password: str = PASSWORD, client: httpx.AsyncClient | None = None) -> str:
        """Log in through the form; returns the session's CSRF token (as pages embed it)."""
        client = client or self.client
        page = await client.get("/login")
        response = await client.post("/login", data={"username": username, "password": password,
                                                     "csrf_token": csrf_from(page.text)})
        assert response.status_code == 303, response.text[:300]
        me = await client.get("/api/v1/me")
        return str(me.json()["csrf_token"])

    async def as_role(self, role: Role, client: httpx.AsyncClient | None = None) -> str:
        name = f"{role.value}-user"
        if await self.ctx.users.by_name(name) is None:
            await self.add_user(name, role)
        return await self.login(name, client=client)


async def _make_panel(tmp_path: Path, settings: PanelConfig | None = None,
                      hooks: PanelHooks | None = None) -> AsyncIterator[Panel]:
    config_path, secrets_path = write_panel_estate(tmp_path)
    clock = ManualClock(T0)
    reloads: list[int] = []

    async def reload() -> dict[str, list[str]]:
        reloads.append(1)
        return {"restarted": []}

    hooks = hooks or PanelHooks()
    if hooks.reload is None:
        hooks.reload = reload
    async with Store(tmp_path / "edge.db", evidence_dir=tmp_path / "evidence", maintenance_interval_s=0,
                     batch_max_delay_ms=1, clock=clock) as store:
        app = create_app(store, config_path, secrets_path, clock=clock, hooks=hooks,
                         settings=settings or panel_settings(), passwords=cheap_passwords(), backlog_ttl_s=0)
        async with (app.router.lifespan_context(app),
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://panel.test") as c):
            yield Panel(app, store, c, clock, config_path, secrets_path, hooks, reloads)


@pytest.fixture
async def panel(tmp_path: Path) -> AsyncIterator[Panel]:
    async for p in _make_panel(tmp_path):
        yield p


@pytest.fixture
def make_panel(tmp_path: Path):  # type: ignore[no-untyped-def]
    """For tests that need other settings or hooks: ``async with make_panel(settings=...) as p``."""
    import contextlib

    @contextlib.asynccontextmanager
    async def factory(settings: PanelConfig | None = None, hooks: PanelHooks | None = None) -> AsyncIterator[Panel]:
        generator = _make_panel(tmp_path, settings, hooks)
        panel = await generator.__anext__()
        try:
            yield panel
        finally:
            await generator.aclose()

    return factory
