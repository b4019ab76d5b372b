"""Health check, Prometheus metrics, and the admin-only OpenAPI schema and docs page."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from edge.panel.routes.common import page_router
from edge.panel.security import Principal, ctx_of, current_principal, require_admin
from edge.panel.views import render

router = page_router()
open_router = APIRouter(include_in_schema=False)


@open_router.get("/healthz")
async def healthz() -> dict[str, bool]:
    """Liveness for systemd/monitoring: the app answers (no store access, no login)."""
    return {"ok": True}


@open_router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus metrics for a bearer token (``panel.metrics_token``) or a logged-in user.

    They name devices and show backlogs and alarm counts, so they are not for anonymous callers
    unless ``panel.metrics_public`` says the network is a closed monitoring LAN. A wrong token is
    refused even when a session cookie came along (a scraper misconfigured is told so).
    """
    ctx = ctx_of(request)
    if not ctx.settings.metrics_public:
        token = ctx.settings.metrics_token
        authorization = request.headers.get("authorization")
        if authorization is not None and token is not None:
            supplied = authorization.removeprefix("Bearer ").strip()
            allowed = hmac.compare_digest(supplied.encode(), token.get_secret_value().encode())
        else:
            allowed = await current_principal(request) is not None
        if not allowed:
            return Response("metrics need a bearer token or a login\n", status_code=401, media_type="text/plain",
                            headers={"www-authenticate": "Bearer"})
    overview = await ctx.overview.snapshot(ctx.config.index)
    extra: dict[str, Any] = {
        "panel_sessions_active": await ctx.sessions.active_count(),
        "panel_rollup_flushes": ctx.live.flushes,
        "panel_rollup_dropped_buckets": ctx.live.dropped_buckets,
        "store_commits": ctx.store.commits,
        "store_rows_written": ctx.store.rows_written,
    }
    body = ctx.metrics.render(overview, await ctx.store.counters(), extra)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/openapi.json")
async def openapi(request: Request, principal: Annotated[Principal, Depends(require_admin)]) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/api/docs")
async def docs(request: Request, principal: Annotated[Principal, Depends(require_admin)]) -> Response:
    """The API reference, rendered from the OpenAPI schema on the server (no Swagger UI from a CDN)."""
    schema = request.app.openapi()
    operations = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            operations.append({
                "method": method.upper(), "path": path, "summary": op.get("summary", ""),
                "description": op.get("description", ""), "parameters": op.get("parameters", []),
                "body": _ref_name(body), "responses": {code: _ref_name(r.get("content", {}).get(
                    "application/json", {}).get("schema")) or r.get("description", "")
                    for code, r in op.get("responses", {}).items()},
            })
    components = schema.get("components", {}).get("schemas", {})
    return render(request, "api_docs.html", {"nav": "api", "schema": schema, "operations": operations,
                                             "components": components})


def _ref_name(schema: dict[str, Any] | None) -> str:
    if not schema:
        return ""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return f"list[{_ref_name(schema['items'])}]"
    return str(schema.get("type", ""))
