"""Who is asking, may they, and did they mean to: sessions, roles, CSRF, path parameters and security headers.

CSRF: every state-changing request (POST, PUT, PATCH, DELETE) must carry the session's token in
the ``X-CSRF-Token`` header (the JSON API, the panel's scripts) or a ``csrf_token`` form field (the
pages' forms), and if the browser sent an ``Origin`` header it must be this panel's own origin.
Before login (the login, setup and language forms) the token is an HMAC of a random pre-session
cookie under a per-process key. The check is a dependency on every router (``csrf_protect``), and a
unit test walks every route to prove none is missing it. Cookies are also ``SameSite=Strict``.

Cookies: HttpOnly (scripts never see the session), SameSite=Strict, Path=/, and Secure whenever the
request came over HTTPS (or always, when the config says so).

Path parameters (``/evidence/{name}``, ``/devices/{device_id}`` ...) are one name each, never a path:
``safe_path_params`` is a dependency on every router and answers 404 to a NUL or other control
character, a separator, ``.`` / ``..`` or a name longer than a file name may be, before any handler
turns the value into a file system path or a query (a NUL there raised ``ValueError``: a 500).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.panel.roles import Role
from edge.panel.sessions import Session
from edge.panel.users import User

if TYPE_CHECKING:
    from edge.panel.context import PanelContext

SESSION_COOKIE = "edge_session"
PRE_COOKIE = "edge_pre"
LANG_COOKIE = "edge_lang"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

MAX_PATH_PARAM_BYTES = 255  # NAME_MAX of Linux file systems: no id or file name of ours is longer
HSTS = "max-age=31536000"  # one year; no includeSubDomains: the panel is usually reached by IP address

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form, the API answers 401."""


class Forbidden(Exception):
    """Logged in, but the role does not allow this (403)."""

    def __init__(self, needed: Role) -> None:
        super().__init__(f"needs role {needed.value}")
        self.needed = needed


class CsrfRejected(Exception):
    """A state-changing request without a valid CSRF token or from a foreign origin (403)."""


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    session: Session
    token: str

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def role(self) -> Role:
        return self.user.role

    def can(self, role: Role | str) -> bool:
        return self.user.role.allows(Role(role))


def ctx_of(request: Request) -> PanelContext:
    panel: PanelContext = request.app.state.panel  # set once by create_app; starlette's State is untyped
    return panel


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


async def current_principal(request: Request) -> Principal | None:
    """The logged-in user of this request, or None. Looked up once per request."""
    if hasattr(request.state, "principal"):
        principal: Principal | None = request.state.principal
        return principal
    ctx = ctx_of(request)
    principal = None
    token = request.cookies.get(SESSION_COOKIE)
    session = await ctx.sessions.lookup(token)
    if session is not None and token is not None:
        user = await ctx.users.get(session.user_id)
        if user is not None and user.enabled:
            principal = Principal(user, session, token)
    request.state.principal = principal
    return principal


def require(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """Dependency: the request's principal, who must hold at least ``role``."""

    async def dependency(request: Request) -> Principal:
        principal = await current_principal(request)
        if principal is None:
            raise LoginRequired()
        if not principal.can(role):
            raise Forbidden(role)
        return principal

    dependency.__name__ = f"require_{role.value}"
    return dependency


require_viewer = require(Role.VIEWER)
require_operator = require(Role.OPERATOR)
require_admin = require(Role.ADMIN)


# ---------------------------------------------------------------------------------------------- CSRF
def anonymous_token(secret: bytes, pre_id: str) -> str:
    return hmac.new(secret, b"pre:" + pre_id.encode("utf-8"), hashlib.sha256).hexdigest()


async def expected_csrf(request: Request) -> str | None:
    principal = await current_principal(request)
    if principal is not None:
        return principal.session.csrf_token
    pre_id = request.cookies.get(PRE_COOKIE)
    if not pre_id or len(pre_id) > 128:
        return None
    return anonymous_token(ctx_of(request).secret, pre_id)


def _same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin (or from an opaque one).

    Browsers send ``Origin`` on every cross-origin POST; a request without it (curl, scripts) still
    needs the token, so a missing header is not a reason to refuse.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.scheme == request.url.scheme and parts.netloc == request.headers.get("host", "")


async def csrf_protect(request: Request) -> None:
    """Dependency on every router: refuse state-changing requests without the right token."""
    if request.method not in UNSAFE_METHODS:
        return
    if not _same_origin(request):
        raise CsrfRejected("cross-origin request refused")
    expected = await expected_csrf(request)
    supplied = request.headers.get(CSRF_HEADER)
    if supplied is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            supplied = value if isinstance(value, str) else None
    if not expected or not supplied or not hmac.compare_digest(expected.encode(), supplied.encode()):
        if request.cookies.get(SESSION_COOKIE) and await current_principal(request) is None:
            # The browser's session ended (idle, logout elsewhere) while a form was open: nothing is
            # done either way, but "log in again" is the useful answer, not a CSRF error.
            raise LoginRequired()
        raise CsrfRejected("missing or wrong CSRF token")


def odd_path_param(value: str) -> bool:
    """True for a value no route of ours can mean: control characters, separators, dot names, overlong."""
    return (
        not value or value in (".", "..") or "/" in value or "\\" in value
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
        or len(value.encode("utf-8", "surrogatepass")) > MAX_PATH_PARAM_BYTES
    )


async def safe_path_params(request: Request) -> None:
    """Dependency on every router: odd path parameters are "not found" (404), never a server error."""
    for value in request.path_params.values():
        if isinstance(value, str) and odd_path_param(value):
            raise HTTPException(404, "not found")


def csrf_token_for(request: Request, response_cookies: dict[str, str]) -> str:
    """The token to embed in this page's forms; mints a pre-session cookie for anonymous visitors."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None:
        return principal.session.csrf_token
    pre_id = request.cookies.get(PRE_COOKIE)
    if not pre_id or len(pre_id) > 128:
        pre_id = secrets.token_urlsafe(24)
        response_cookies[PRE_COOKIE] = pre_id
    return anonymous_token(ctx_of(request).secret, pre_id)


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int | None = None,
               http_only: bool = True) -> None:
    ctx = ctx_of(request)
    secure = is_https(request) or ctx.settings.cookie_secure == "always"
    response.set_cookie(name, value, max_age=max_age, path="/", secure=secure, httponly=http_only,
                        samesite="strict")


def clear_cookie(request: Request, response: Response, name: str) -> None:
    ctx = ctx_of(request)
    secure = is_https(request) or ctx.settings.cookie_secure == "always"
    response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="strict")


def safe_next(target: str | None, default: str = "/") -> str:
    """Only local paths are allowed after login (no open redirect to another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(c) < 32 for c in target):
        return default
    return target


# ---------------------------------------------------------------------------------------------- headers
class SecurityHeaders:
    """Pure ASGI middleware: security headers on every response, request timing for /metrics.

    ``Cache-Control: no-store`` on everything but static assets: pages carry names, alarms and
    tokens that must not stay in a shared control-room browser's cache. ``Strict-Transport-Security``
    whenever the request came over TLS, so a browser that once reached the panel over HTTPS never
    falls back to plain HTTP (where a session cookie could be read on the estate LAN); over plain
    HTTP browsers ignore it, so it is not sent.
    """

    def __init__(self, app: ASGIApp, observe: Callable[[str, str, int, float], None] | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope.get("path", "")
        status_holder: dict[str, Any] = {"status": 500}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                if b"content-security-policy" not in names:
                    extra.append((b"content-security-policy", CSP.encode()))
                if scope.get("scheme") == "https" and b"strict-transport-security" not in names:
                    extra.append((b"strict-transport-security", HSTS.encode()))
                if b"cache-control" not in names:
                    extra.append((b"cache-control", b"public, max-age=3600" if path.startswith("/static/")
                                  else b"no-store"))
                message = {**message, "headers": headers + extra}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if self.observe is not None:
                route = scope.get("route")
                template = getattr(route, "path", None) or "(unmatched)"
                self.observe(scope.get("method", ""), template, status_holder["status"],
                             time.perf_counter() - started)
