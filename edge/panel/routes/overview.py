"""The overview page: the estate at a glance."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response

from edge.panel.routes.common import page_router
from edge.panel.security import Principal, ctx_of, require_viewer
from edge.panel.views import render

router = page_router()


@router.get("/")
async def overview(request: Request, principal: Annotated[Principal, Depends(require_viewer)]) -> Response:
    ctx = ctx_of(request)
    snapshot = await ctx.overview.snapshot(ctx.config.index)
    return render(request, "overview.html", {"o": snapshot, "nav": "overview"})
