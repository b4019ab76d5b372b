"""Login, logout, first-admin setup, own password, language switch."""

from __future__ import annotations

import logging
import math
from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from edge.messages import say
from edge.panel.i18n import LANGUAGES
from edge.panel.passwords import PasswordPolicyError
from edge.panel.roles import Role
from edge.panel.routes.common import audit, now_us, page_router
from edge.panel.security import (
    LANG_COOKIE,
    PRE_COOKIE,
    SESSION_COOKIE,
    Principal,
    clear_cookie,
    client_ip,
    ctx_of,
    current_principal,
    require_viewer,
    safe_next,
    set_cookie,
)
from edge.panel.throttle import ThrottleStart
from edge.panel.users import UserError
from edge.panel.views import explain, render
from edge.records import Event, Severity

log = logging.getLogger(__name__)

router = page_router()

THROTTLE_EVENT = "panel.login_throttled"


@router.get("/login")
async def login_form(request: Request, next: str = "/") -> Response:
    ctx = ctx_of(request)
    if ctx.setup.active and await ctx.users.count() == 0:
        return RedirectResponse("/setup", status_code=303)
    if await current_principal(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next)})


async def _start_session(request: Request, response: Response, user_id: str) -> None:
    """Session fixation defence: drop whatever session the browser brought, mint a fresh one."""
    ctx = ctx_of(request)
    await ctx.sessions.delete(request.cookies.get(SESSION_COOKIE))
    token, _session = await ctx.sessions.create(user_id, client_ip(request), request.headers.get("user-agent", ""))
    set_cookie(request, response, SESSION_COOKIE, token, max_age=int(ctx.settings.session_max_hours * 3600))
    clear_cookie(request, response, PRE_COOKIE)


def _too_many(request: Request, next: str, wait: float, username: str = "") -> Response:
    response = render(request, "login.html", {"next": safe_next(next), "error": "login.rate_limited",
                                              "retry_after": math.ceil(wait), "username": username},
                      status_code=429)
    response.headers["retry-after"] = str(math.ceil(wait))
    return response


@router.post("/login")
async def login(request: Request, username: Annotated[str, Form(max_length=64)],
                password: Annotated[str, Form(max_length=256)], next: Annotated[str, Form()] = "/") -> Response:
    ctx = ctx_of(request)
    ip = client_ip(request)
    wait = ctx.limiter.retry_after(ip)
    if wait is not None:
        ctx.metrics.logins.labels("rate_limited").inc()
        await audit(request, username, "login", username, ok=False, reason="rate_limited")
        return _too_many(request, next, wait)
    ctx.limiter.hit(ip)
    wait = ctx.throttle.wait(username, ip)
    if wait is not None:  # the password is not even checked while a wait runs
        ctx.metrics.logins.labels("throttled").inc()
        await audit(request, username, "login", username, ok=False, reason="throttled")
        return _too_many(request, next, wait, username)
    user = await ctx.users.by_name(username)
    valid = await ctx.users.passwords.verify(user.password_hash if user else None, password)
    reason = None
    if user is None:
        reason = "unknown_user"
    elif not user.enabled:
        reason = "disabled"
    elif user.locked(now_us(ctx)):
        reason = "locked"
    elif not valid:
        reason = "wrong_password"
        await ctx.users.login_failed(user)
    if reason is not None or user is None:
        if not valid:  # a disabled or legacy-locked account with the right password is not a guess
            for start in ctx.throttle.failed(username, ip):
                await report_throttle(request, start)
        ctx.metrics.logins.labels("failed").inc()
        await audit(request, username, "login", username, ok=False, reason=reason)
        return render(request, "login.html", {"next": safe_next(next), "error": "login.failed",
                                              "username": username}, status_code=401)
    ctx.throttle.succeeded(username, ip)
    await ctx.users.login_succeeded(user, password)
    ctx.metrics.logins.labels("ok").inc()
    response = RedirectResponse(safe_next(next), status_code=303)
    await _start_session(request, response, user.user_id)
    await audit(request, username, "login", username)
    return response


async def report_throttle(request: Request, start: ThrottleStart) -> None:
    """The ``panel.login_throttled`` security event, stored twice.

    In the store's event lane (uploaded like any event) and in the audit log, where admins see it on
    /admin/audit.
    """
    ctx = ctx_of(request)
    delay = math.ceil(start.delay_s)
    text = say("panel.login_throttled" if start.scope == "source" else "panel.login_throttled_account",
               username=start.username, failures=start.failures, delay_s=delay)
    data = {"username": start.username, "ip": start.ip, "scope": start.scope, "failures": start.failures,
            "delay_s": start.delay_s}
    await ctx.store.append_events([Event(code=THROTTLE_EVENT, ts=ctx.clock.now(), severity=Severity.WARNING,
                                         data=data, **text)])
    await audit(request, start.username, THROTTLE_EVENT, start.username, ok=False, scope=start.scope,
                failures=start.failures, delay_s=delay)
    log.warning("panel: login for %r throttled (%s %s, %d failures, wait %d s)", start.username, start.scope,
                start.ip, start.failures, delay)


@router.post("/logout")
async def logout(request: Request) -> Response:
    ctx = ctx_of(request)
    principal = await current_principal(request)
    await ctx.sessions.delete(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    clear_cookie(request, response, SESSION_COOKIE)
    if principal is not None:
        await audit(request, principal, "logout", principal.username)
    return response


@router.get("/setup")
async def setup_form(request: Request) -> Response:
    ctx = ctx_of(request)
    if not ctx.setup.active or await ctx.users.count() > 0:
        return RedirectResponse("/login", status_code=303)
    return render(request, "setup.html", {"min_length": ctx.users.passwords.min_length})


@router.post("/setup")
async def setup(request: Request, token: Annotated[str, Form(max_length=128)],
                username: Annotated[str, Form(max_length=64)], password: Annotated[str, Form(max_length=256)],
                password2: Annotated[str, Form(max_length=256)]) -> Response:
    ctx = ctx_of(request)
    if not ctx.setup.active or await ctx.users.count() > 0:
        return RedirectResponse("/login", status_code=303)
    ip = client_ip(request)
    wait = ctx.limiter.retry_after(ip)
    context = {"min_length": ctx.users.passwords.min_length, "username": username}
    if wait is not None:
        return render(request, "setup.html", {**context, "error": "login.rate_limited",
                                              "retry_after": int(wait) + 1}, status_code=429)
    ctx.limiter.hit(ip)
    if not ctx.setup.check(token):
        await audit(request, username, "setup", username, ok=False, reason="bad_token")
        return render(request, "setup.html", {**context, "error": "setup.bad_token"}, status_code=401)
    if password != password2:
        return render(request, "setup.html", {**context, "error": "password.mismatch"}, status_code=422)
    try:
        user = await ctx.users.create(username, password, Role.ADMIN)
    except PasswordPolicyError as exc:
        return render(request, "setup.html", {**context, "error": "password.weak",
                                                 "detail": explain(request, exc.code, **exc.params)},
                      status_code=422)
    except UserError as exc:
        return render(request, "setup.html", {**context, "error": exc.code}, status_code=422)
    ctx.setup.consume()
    response = RedirectResponse("/", status_code=303)
    await _start_session(request, response, user.user_id)
    await audit(request, username, "setup", username, role="admin")
    return response


@router.get("/account")
async def account(request: Request, principal: Annotated[Principal, Depends(require_viewer)],
                  msg: str | None = None) -> Response:
    return render(request, "account.html", {"min_length": ctx_of(request).users.passwords.min_length,
                                            "msg": msg if msg in ("password.changed",) else None})


@router.post("/account/password")
async def change_password(request: Request, principal: Annotated[Principal, Depends(require_viewer)],
                          current: Annotated[str, Form(max_length=256)], password: Annotated[str, Form(max_length=256)],
                          password2: Annotated[str, Form(max_length=256)]) -> Response:
    ctx = ctx_of(request)
    context = {"min_length": ctx.users.passwords.min_length}
    if not await ctx.users.passwords.verify(principal.user.password_hash, current):
        await audit(request, principal, "password.change", principal.username, ok=False, reason="wrong_current")
        return render(request, "account.html", {**context, "error": "password.wrong_current"}, status_code=422)
    if password != password2:
        return render(request, "account.html", {**context, "error": "password.mismatch"}, status_code=422)
    try:
        await ctx.users.set_password(principal.user, password)
    except PasswordPolicyError as exc:
        return render(request, "account.html", {**context, "error": "password.weak",
                                                 "detail": explain(request, exc.code, **exc.params)},
                      status_code=422)
    # Other sessions of this user end (a stolen session must not outlive a password change).
    await ctx.sessions.delete_for_user(principal.user.user_id, keep_hash=principal.session.token_hash)
    await audit(request, principal, "password.change", principal.username)
    return RedirectResponse("/account?msg=password.changed", status_code=303)


@router.post("/lang")
async def switch_language(request: Request, lang: Annotated[str, Form(max_length=8)],
                          next: Annotated[str, Form()] = "/") -> Response:
    response = RedirectResponse(safe_next(next), status_code=303)
    if lang in LANGUAGES:
        set_cookie(request, response, LANG_COOKIE, lang, max_age=365 * 86400)
    return response
