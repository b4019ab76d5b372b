"""Small helpers shared by the route modules."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from edge.clock import to_us
from edge.panel.context import PanelContext
from edge.panel.security import Principal, client_ip, csrf_protect, ctx_of, safe_path_params
from edge.store.codec import iso


def page_router() -> APIRouter:
    """A router for HTML pages: path parameters checked, CSRF-checked, not part of the OpenAPI schema."""
    return APIRouter(dependencies=[Depends(safe_path_params), Depends(csrf_protect), Depends(refresh_config)],
                     include_in_schema=False)


async def refresh_config(request: Request) -> None:
    await ctx_of(request).config.refresh()


def now_us(ctx: PanelContext) -> int:
    return to_us(ctx.clock.now())


def iso_or_none(us: int | None) -> str | None:
    return iso(us) if us is not None else None


async def audit(request: Request, who: Principal | str, action: str, target: str = "", *, ok: bool = True,
                **detail: Any) -> None:
    username = who if isinstance(who, str) else who.username
    await ctx_of(request).audit.record(username, action, target, ip=client_ip(request), ok=ok, **detail)


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
