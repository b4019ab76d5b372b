"""Admin pages: accounts (create, role, enable, unlock, reset password, delete) and the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from edge.panel.passwords import PasswordPolicyError
from edge.panel.roles import Role
from edge.panel.routes.common import audit, now_us, page_router
from edge.panel.security import Principal, ctx_of, require_admin
from edge.panel.users import User, UserError
from edge.panel.views import explain, render

router = page_router()

USER_MESSAGES = ("user.created", "user.updated", "user.deleted")


async def _users_page(request: Request, *, msg: str = "", error: str | None = None, detail: str = "",
                      status_code: int = 200) -> Response:
    ctx = ctx_of(request)
    return render(request, "users.html", {
        "nav": "users", "users": await ctx.users.all(), "roles": list(Role), "now": now_us(ctx),
        "throttled": ctx.throttle.throttled,
        "msg": msg if msg in USER_MESSAGES else "", "error": error, "detail": detail,
        "min_length": ctx.users.passwords.min_length,
    }, status_code=status_code)


@router.get("/admin/users")
async def users(request: Request, principal: Annotated[Principal, Depends(require_admin)], msg: str = "") -> Response:
    return await _users_page(request, msg=msg)


@router.post("/admin/users")
async def create_user(request: Request, principal: Annotated[Principal, Depends(require_admin)],
                      username: Annotated[str, Form(max_length=64)], role: Annotated[Role, Form()],
                      password: Annotated[str, Form(max_length=256)]) -> Response:
    ctx = ctx_of(request)
    try:
        await ctx.users.create(username.strip(), password, role)
    except PasswordPolicyError as exc:
        return await _users_page(request, error="password.weak",
                                 detail=explain(request, exc.code, **exc.params), status_code=422)
    except UserError as exc:
        return await _users_page(request, error=exc.code, status_code=422)
    await audit(request, principal, "user.create", username, role=role.value)
    return RedirectResponse("/admin/users?msg=user.created", status_code=303)


async def _user(request: Request, username: str) -> User:
    user = await ctx_of(request).users.by_name(username)
    if user is None:
        raise HTTPException(404, f"no user {username!r}")
    return user


@router.post("/admin/users/{username}")
async def update_user(request: Request, username: str, principal: Annotated[Principal, Depends(require_admin)],
                      action: Annotated[str, Form(pattern="^(role|enable|disable|unlock|password)$")],
                      role: Annotated[Role | None, Form()] = None,
                      password: Annotated[str, Form(max_length=256)] = "") -> Response:
    ctx = ctx_of(request)
    user = await _user(request, username)
    try:
        if action == "role" and role is not None:
            if user.user_id == principal.user.user_id and role is not Role.ADMIN:
                raise UserError("user.not_self", "you can not demote your own account")
            await ctx.users.set_role(user, role)
            await ctx.sessions.delete_for_user(user.user_id)
        elif action in ("enable", "disable"):
            if user.user_id == principal.user.user_id and action == "disable":
                raise UserError("user.not_self", "you can not disable your own account")
            await ctx.users.set_enabled(user, action == "enable")
            if action == "disable":
                await ctx.sessions.delete_for_user(user.user_id)
        elif action == "unlock":
            await ctx.users.unlock(user)
            ctx.throttle.clear(user.username)
        elif action == "password":
            await ctx.users.set_password(user, password)
            await ctx.sessions.delete_for_user(user.user_id, keep_hash=principal.session.token_hash)
        else:
            raise UserError("user.bad_request", "choose a role")
    except PasswordPolicyError as exc:
        return await _users_page(request, error="password.weak",
                                 detail=explain(request, exc.code, **exc.params), status_code=422)
    except UserError as exc:
        await audit(request, principal, f"user.{action}", username, ok=False, reason=exc.code)
        return await _users_page(request, error=exc.code, status_code=409)
    detail: dict[str, Any] = {"role": role.value} if role else {}
    await audit(request, principal, f"user.{action}", username, **detail)
    return RedirectResponse("/admin/users?msg=user.updated", status_code=303)


@router.post("/admin/users/{username}/delete")
async def delete_user(request: Request, username: str,
                      principal: Annotated[Principal, Depends(require_admin)]) -> Response:
    ctx = ctx_of(request)
    user = await _user(request, username)
    try:
        if user.user_id == principal.user.user_id:
            raise UserError("user.not_self", "you can not delete your own account")
        await ctx.users.delete(user)
    except UserError as exc:
        await audit(request, principal, "user.delete", username, ok=False, reason=exc.code)
        return await _users_page(request, error=exc.code, status_code=409)
    await ctx.sessions.delete_for_user(user.user_id)
    await audit(request, principal, "user.delete", username)
    return RedirectResponse("/admin/users?msg=user.deleted", status_code=303)


@router.get("/admin/audit")
async def audit_log(request: Request, principal: Annotated[Principal, Depends(require_admin)],
                    username: Annotated[str, Query(max_length=64)] = "",
                    action: Annotated[str, Query(max_length=64)] = "",
                    q: Annotated[str, Query(max_length=100)] = "",
                    before: Annotated[str, Query(max_length=32)] = "") -> Response:
    ctx = ctx_of(request)
    entries = await ctx.audit.search(username=username or None, action=action or None, q=q or None,
                                     before_id=before or None, limit=100)
    return render(request, "audit.html", {
        "nav": "audit", "entries": entries, "actions": await ctx.audit.actions(),
        "f": {"username": username, "action": action, "q": q},
        "next_before": entries[-1].id if len(entries) == 100 else None,
    })
