"""Installer tools for MQTT, BLE and OPC-UA buses: listen on a topic, the BLE scan list, browse a PLC.

Installer (admin) only, CSRF-checked like the other tools: the pages post forms and redirect back
to ``/tools`` (the last result stays there, as the test-device result does); the JSON API answers
the same records. The panel only renders what the daemon's ``BusTools`` hook returns; without the
hook the tools say they are unavailable.

Bounds: one listen or browse at a time per panel (a second gets 409), a listen for at most
``MAX_LISTEN_S`` seconds and ``MAX_LISTEN_MESSAGES`` messages (payload previews only), a browse of at
most ``MAX_BROWSE_NODES`` nodes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from edge.bus_tools import BrowseResult, BusInfo, BusTools, ClientCertificate, ListenResult, ScanList
from edge.panel.routes.common import audit, page_router, refresh_config
from edge.panel.security import Principal, csrf_protect, ctx_of, require_admin, safe_path_params

router = page_router()
api = APIRouter(prefix="/api/v1", tags=["panel"],
                dependencies=[Depends(safe_path_params), Depends(csrf_protect), Depends(refresh_config)])

MAX_LISTEN_S = 60
MAX_LISTEN_MESSAGES = 200
MAX_BROWSE_DEPTH = 6
MAX_BROWSE_NODES = 2000
LISTEN_CHOICES_S = (5, 10, 30, 60)
Admin = Annotated[Principal, Depends(require_admin)]


class ListenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bus_id: str = Field(min_length=1, max_length=64)
    topic_filter: str = Field(min_length=1, max_length=1024)
    seconds: float = Field(10, gt=0, le=MAX_LISTEN_S)
    max_messages: int = Field(50, ge=1, le=MAX_LISTEN_MESSAGES)


class BrowseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bus_id: str = Field(min_length=1, max_length=64)
    root: str = Field("i=85", max_length=512)
    max_depth: int = Field(3, ge=1, le=MAX_BROWSE_DEPTH)
    max_nodes: int = Field(500, ge=1, le=MAX_BROWSE_NODES)


def _tools(request: Request) -> BusTools:
    tools = ctx_of(request).hooks.bus_tools
    if tools is None:
        raise HTTPException(404, "this gateway has no bus tools")
    return tools


@contextlib.asynccontextmanager
async def _one_at_a_time(request: Request) -> AsyncIterator[None]:
    """A listen or browse holds a broker or PLC session for seconds: one per panel; a second gets 409."""
    lock = getattr(request.app.state, "bus_tool_lock", None)
    if lock is None:
        lock = request.app.state.bus_tool_lock = asyncio.Lock()
    if lock.locked():
        raise HTTPException(409, "another listen or browse is running; try again when it ends")
    async with lock:
        yield


async def run_listen(request: Request, principal: Principal, body: ListenIn) -> ListenResult:
    tools = _tools(request)
    async with _one_at_a_time(request):
        result = await tools.mqtt_listen(body.bus_id, body.topic_filter, body.seconds, body.max_messages)
    ctx_of(request).tools.listened = result
    await audit(request, principal, "tools.mqtt_listen", f"{body.bus_id} {body.topic_filter}"[:200],
                ok=result.error is None, messages=len(result.messages), error=result.error)
    return result


async def run_browse(request: Request, principal: Principal, body: BrowseIn) -> BrowseResult:
    tools = _tools(request)
    async with _one_at_a_time(request):
        result = await tools.opcua_browse(body.bus_id, body.root, body.max_depth, body.max_nodes)
    ctx_of(request).tools.browsed = result
    await audit(request, principal, "tools.opcua_browse", f"{body.bus_id} {body.root}"[:200],
                ok=result.error is None, nodes=len(result.nodes), error=result.error)
    return result


def bus_tools_context(request: Request) -> dict[str, Any]:
    """What the tools page shows of these tools (the page's GET calls this)."""
    ctx = ctx_of(request)
    tools = ctx.hooks.bus_tools
    buses = tools.buses() if tools is not None else []
    return {
        "has_bus_tools": tools is not None,
        "mqtt_buses": [b for b in buses if b.kind == "mqtt"],
        "opcua_buses": [b for b in buses if b.kind == "opcua"],
        "ble_scans": tools.ble_scan() if tools is not None and any(b.kind == "ble" for b in buses) else [],
        "listened": ctx.tools.listened,
        "browsed": ctx.tools.browsed,
        "certificate": ctx.tools.certificate,
        "listen_choices": LISTEN_CHOICES_S,
    }


# ------------------------------------------------------------------------------------------------ pages


@router.post("/tools/mqtt-listen")
async def listen_page(request: Request, principal: Admin,
                      bus_id: Annotated[str, Form(min_length=1, max_length=64)],
                      topic_filter: Annotated[str, Form(min_length=1, max_length=1024)],
                      seconds: Annotated[int, Form(ge=1, le=MAX_LISTEN_S)] = 10,
                      max_messages: Annotated[int, Form(ge=1, le=MAX_LISTEN_MESSAGES)] = 50) -> Response:
    body = ListenIn(bus_id=bus_id, topic_filter=topic_filter, seconds=seconds, max_messages=max_messages)
    try:
        await run_listen(request, principal, body)
    except HTTPException as exc:
        if exc.status_code != 409:
            raise
        ctx_of(request).tools.listened = ListenResult(bus_id, topic_filter, stopped_by="error", error="busy")
    return RedirectResponse("/tools#mqtt-listen", status_code=303)


@router.post("/tools/opcua-browse")
async def browse_page(request: Request, principal: Admin,
                      bus_id: Annotated[str, Form(min_length=1, max_length=64)],
                      root: Annotated[str, Form(max_length=512)] = "i=85",
                      max_depth: Annotated[int, Form(ge=1, le=MAX_BROWSE_DEPTH)] = 3) -> Response:
    try:
        await run_browse(request, principal, BrowseIn(bus_id=bus_id, root=root or "i=85", max_depth=max_depth))
    except HTTPException as exc:
        if exc.status_code != 409:
            raise
        ctx_of(request).tools.browsed = BrowseResult(bus_id, root, error="busy")
    return RedirectResponse("/tools#opcua-browse", status_code=303)


async def show_certificate(request: Request, principal: Principal, bus_id: str) -> ClientCertificate:
    """The bus's client certificate (made on first use), kept for the page; the audit log notes who looked."""
    result = await _tools(request).opcua_certificate(bus_id)
    ctx_of(request).tools.certificate = result
    await audit(request, principal, "tools.opcua_certificate", bus_id[:64], ok=result.error is None,
                thumbprint=result.thumbprint_sha1, error=result.error)
    return result


@router.post("/tools/opcua-certificate")
async def certificate_page(request: Request, principal: Admin,
                           bus_id: Annotated[str, Form(min_length=1, max_length=64)]) -> Response:
    await show_certificate(request, principal, bus_id)
    return RedirectResponse("/tools#opcua-certificate", status_code=303)


@router.get("/tools/opcua-certificate/{bus_id}.der")
async def certificate_download(request: Request, bus_id: str, principal: Admin) -> Response:
    """The certificate as DER, the file PLC engineering tools import into their trust list."""
    result = await _tools(request).opcua_certificate(bus_id)
    if result.error is not None:
        raise HTTPException(404, result.error)
    body = "".join(line for line in result.pem.splitlines() if not line.startswith("-----"))
    return Response(base64.b64decode(body), media_type="application/pkix-cert",
                    headers={"Content-Disposition": f'attachment; filename="estate-edge-{bus_id}.der"'})


# ------------------------------------------------------------------------------------------------ JSON API


@api.get("/tools/buses", response_model=list[BusInfo])
async def buses_api(request: Request, principal: Admin) -> list[BusInfo]:
    return _tools(request).buses()


@api.post("/tools/mqtt-listen", response_model=ListenResult)
async def listen_api(request: Request, body: ListenIn, principal: Admin) -> ListenResult:
    return await run_listen(request, principal, body)


@api.get("/tools/ble-scan", response_model=list[ScanList])
async def ble_scan_api(request: Request, principal: Admin) -> list[ScanList]:
    return _tools(request).ble_scan()


@api.post("/tools/opcua-browse", response_model=BrowseResult)
async def browse_api(request: Request, body: BrowseIn, principal: Admin) -> BrowseResult:
    return await run_browse(request, principal, body)


@api.get("/tools/opcua-certificate", response_model=ClientCertificate)
async def certificate_api(request: Request, bus_id: str, principal: Admin) -> ClientCertificate:
    return await show_certificate(request, principal, bus_id)
