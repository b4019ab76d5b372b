"""``create_app``: the panel as a FastAPI application, wired to the store, config file and daemon hooks.

Lifecycle: the app's lifespan applies the panel's schema, loads the latest values, prints the
one-time setup token when there are no accounts yet, and runs two background tasks (rollup flush,
session purge); on shutdown it cancels them, and the rollup task flushes once more. When the daemon
passes its ``Pipeline``, the panel registers its observers on it here (they do memory work only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge.clock import Clock, SystemClock
from edge.config import EstateConfig, load_config
from edge.config.panel import PanelConfig
from edge.errors import ConfigError
from edge.panel import routes
from edge.panel.alarm_actions import AlarmActions, CheckedAlarmActions, StoreAlarmActions
from edge.panel.audit import AuditLog
from edge.panel.config_files import ConfigFiles
from edge.panel.context import ConfigHolder, PanelContext
from edge.panel.hooks import PanelHooks
from edge.panel.live import LiveValues
from edge.panel.metrics import PanelMetrics
from edge.panel.overview import OverviewService
from edge.panel.passwords import Passwords
from edge.panel.ratelimit import LoginRateLimiter
from edge.panel.routes import labels as label_routes
from edge.panel.schema import PANEL_COMPONENT, PANEL_MIGRATIONS, PANEL_TABLES
from edge.panel.security import CsrfRejected, Forbidden, LoginRequired, SecurityHeaders, current_principal
from edge.panel.sessions import SessionStore
from edge.panel.setup_token import SetupToken
from edge.panel.throttle import LoginThrottle
from edge.panel.users import UserStore
from edge.panel.views import make_templates, render
from edge.pipeline import Pipeline
from edge.store import Store

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"


def create_app(
    store: Store,
    config_path: Path,
    secrets_path: Path | None = None,
    *,
    alarms: AlarmActions | None = None,
    hooks: PanelHooks | None = None,
    pipeline: Pipeline | None = None,
    clock: Clock | None = None,
    config: EstateConfig | None = None,
    settings: PanelConfig | None = None,
    passwords: Passwords | None = None,
    base_url: str | None = None,
    backlog_ttl_s: float = 5.0,
) -> FastAPI:
    """Build the panel.

    store         the open ``Store`` (the panel keeps its own tables behind ``Store.tables`` handles)
    config_path   the estate YAML the installer tools check, download, replace and edit zones in
    secrets_path  the secrets file, so checks resolve ``!secret`` exactly as the daemon does
    alarms        the daemon's ``AlarmManager`` (acknowledge/resolve); default: write steps to the store
    hooks         reload / test_device / discover / snapshot / uplink_status (all optional)
    pipeline      when given, the panel observes readings and device status for live values and charts
    config        the already loaded config (else it is loaded from ``config_path``)
    settings      panel settings (default: ``config.panel``)
    passwords     hashing parameters (tests pass cheaper ones)
    base_url      how the setup token message tells the installer to reach the panel
    """
    clock = clock or SystemClock()
    hooks = hooks or PanelHooks()
    files_secret = Path(secrets_path) if secrets_path else None
    if config is None:
        try:
            config = load_config(Path(config_path), files_secret)
        except ConfigError as exc:
            log.error("panel: the config does not validate; installer tools stay available:\n  %s",
                      "\n  ".join(exc.problems))
    settings = settings or (config.panel if config else PanelConfig())
    files = ConfigFiles(Path(config_path), files_secret, keep=settings.config_backups)
    live = LiveValues(store, clock, flush_interval_s=settings.rollup_flush_s)
    if pipeline is not None:
        pipeline.observe_readings(live.on_readings)
        pipeline.observe_status(live.on_status)
    scheme = "https" if settings.tls_cert else "http"
    ctx = PanelContext(
        store=store,
        clock=clock,
        settings=settings,
        files=files,
        config=ConfigHolder(files, config),
        users=UserStore(store, passwords or Passwords(min_length=settings.password_min_length), clock,
                        extra_words=(config.estate.name, config.estate.id) if config else ()),
        sessions=SessionStore(store, clock, idle=timedelta(minutes=settings.session_idle_minutes),
                              max_age=timedelta(hours=settings.session_max_hours)),
        audit=AuditLog(store, clock),
        limiter=LoginRateLimiter(settings.login_attempts_per_minute, clock),
        throttle=LoginThrottle(clock, free_failures=settings.login_free_failures,
                               max_delay_s=settings.login_max_delay_s,
                               account_free_failures=settings.login_account_free_failures,
                               account_max_delay_s=settings.login_account_max_delay_s),
        setup=SetupToken(),
        live=live,
        alarms=CheckedAlarmActions(alarms or StoreAlarmActions(store, clock), store),
        hooks=hooks,
        overview=OverviewService(store, live, hooks, clock, backlog_ttl_s=backlog_ttl_s),
        metrics=PanelMetrics(),
        templates=make_templates(),
        secret=os.urandom(32),
        base_url=base_url or f"{scheme}://{settings.host}:{settings.port}",
        static_dir=STATIC_DIR,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.tables(PANEL_COMPONENT, PANEL_TABLES).migrate(PANEL_MIGRATIONS)
        await live.load()
        if await ctx.users.count() == 0:
            ctx.setup.issue(ctx.base_url)
        ctx.tasks = [
            asyncio.create_task(live.run(), name="panel-rollups"),
            asyncio.create_task(_purge_sessions(ctx), name="panel-sessions"),
        ]
        if backlog_ttl_s > 0:
            ctx.tasks.append(asyncio.create_task(ctx.overview.refresh_loop(), name="panel-backlog"))
        try:
            yield
        finally:
            for task in ctx.tasks:
                task.cancel()
            for task in ctx.tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            ctx.tasks = []

    app = FastAPI(
        title="estate-edge panel API",
        version="1",
        description="The JSON API behind the estate-edge local panel. Log in at /login; the session cookie "
        "authenticates, and every POST/PUT/PATCH/DELETE needs the X-CSRF-Token header from /api/v1/me.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.panel = ctx
    app.add_middleware(SecurityHeaders, observe=ctx.metrics.observe)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.include_router(routes.system.open_router)
    for module in (routes.auth, routes.overview, routes.devices, routes.alarms, routes.cameras, routes.tools,
                   routes.admin, routes.api, routes.system):
        app.include_router(module.router)
    app.include_router(label_routes.router)
    app.include_router(routes.bus_tools.router)
    app.include_router(routes.bus_tools.api)
    _install_error_pages(app)
    return app


async def _purge_sessions(ctx: PanelContext) -> None:
    while True:
        await asyncio.sleep(3600)
        try:
            await ctx.sessions.purge_expired()
        except Exception:
            log.exception("panel: purging expired sessions failed")


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _install_error_pages(app: FastAPI) -> None:
    """API paths answer JSON; page paths answer a page in the user's language (or the login redirect)."""

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        if _is_api(request) or request.url.path.startswith(("/alarms/rows", "/evidence/")):
            return JSONResponse({"detail": "login required"}, status_code=401)
        # A form posted after the session ended comes back to its page after login (303 turns it into a GET).
        target = request.url.path if request.method == "GET" else urlsplit(request.headers.get("referer", "/")).path
        if request.method == "GET" and request.url.query:
            target += f"?{request.url.query}"
        return RedirectResponse(f"/login?next={quote(target or '/', safe='')}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        await current_principal(request)
        if _is_api(request):
            return JSONResponse({"detail": f"forbidden: needs role {exc.needed.value}"}, status_code=403)
        return render(request, "error.html", {"status": 403, "message_key": "error.forbidden"}, status_code=403)

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, exc: CsrfRejected) -> Response:
        await current_principal(request)
        if _is_api(request):
            return JSONResponse({"detail": f"CSRF check failed: {exc}"}, status_code=403)
        return render(request, "error.html", {"status": 403, "message_key": "error.csrf"}, status_code=403)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request) or request.url.path.startswith("/static/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        await current_principal(request)
        return render(request, "error.html", {"status": exc.status_code, "message": str(exc.detail)},
                      status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        if _is_api(request):
            return JSONResponse({"detail": errors}, status_code=422)
        await current_principal(request)
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in errors)
        return render(request, "error.html", {"status": 422, "message": message}, status_code=422)
