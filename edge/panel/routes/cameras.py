"""Camera pages: the latest frame with zones and detections, the zone editor, the frame itself."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import ValidationError

from edge.config.cameras import CameraConfig
from edge.errors import ConfigError
from edge.panel.api_models import ZonesIn
from edge.panel.cameras import camera_view, latest_evidence, save_zones
from edge.panel.routes.common import audit, page_router
from edge.panel.routes.reload import reload_daemon
from edge.panel.security import Principal, ctx_of, require_admin, require_viewer
from edge.panel.views import render
from edge.panel.yaml_edit import YamlEditError

router = page_router()


def _camera(request: Request, camera_id: str) -> CameraConfig:
    camera = ctx_of(request).config.index.camera_by_id.get(camera_id)
    if camera is None:
        raise HTTPException(404, f"no camera {camera_id!r}")
    return camera


@router.get("/cameras")
async def camera_list(request: Request, principal: Annotated[Principal, Depends(require_viewer)]) -> Response:
    ctx = ctx_of(request)
    views = [await camera_view(ctx.store, ctx.hooks, c) for c in ctx.config.index.cameras]
    return render(request, "cameras.html", {"nav": "cameras", "views": views})


@router.get("/cameras/{camera_id}")
async def camera_page(request: Request, camera_id: str, principal: Annotated[Principal, Depends(require_viewer)],
                      msg: str = "") -> Response:
    return await _camera_page(request, camera_id, msg=msg)


async def _camera_page(request: Request, camera_id: str, *, msg: str = "", problems: list[str] | None = None,
                       status_code: int = 200) -> Response:
    ctx = ctx_of(request)
    camera = _camera(request, camera_id)
    view = await camera_view(ctx.store, ctx.hooks, camera)
    zones = [{"id": z.id, "kind": z.kind, "name": z.name or "", "points": [{"x": x, "y": y} for x, y in z.polygon]}
             for z in camera.zones]
    return render(request, "camera.html", {
        "nav": "cameras", "c": camera, "view": view, "zones": zones, "zones_json": json.dumps(zones),
        "msg": msg if msg in ("zones.saved", "zones.saved_reload_failed") else "", "problems": problems or [],
    }, status_code=status_code)


@router.get("/cameras/{camera_id}/frame.jpg")
async def frame(request: Request, camera_id: str, principal: Annotated[Principal, Depends(require_viewer)]) -> Response:
    ctx = ctx_of(request)
    camera = _camera(request, camera_id)
    if ctx.hooks.snapshot is not None:
        live = await ctx.hooks.snapshot(camera.id)
        if live is not None:
            return Response(live.jpeg, media_type="image/jpeg", headers={"cache-control": "no-store"})
    found = await latest_evidence(ctx.store, camera.id)
    path = ctx.store.evidence_file(found[1]) if found else None
    if path is None:
        raise HTTPException(404, "no frame from this camera yet")
    return FileResponse(path, media_type="image/jpeg")


async def apply_zones(request: Request, principal: Principal, camera: CameraConfig,
                      zones: list[dict[str, Any]]) -> tuple[str | None, bool, str | None]:
    """Save, audit, reload. Returns (backup file name, reloaded, reload error). Raises ConfigError/YamlEditError."""
    ctx = ctx_of(request)
    try:
        result = await save_zones(ctx.files, camera, zones)
    except (ConfigError, YamlEditError) as exc:
        await audit(request, principal, "zones.save", camera.id, ok=False, error=str(exc)[:300])
        raise
    ctx.config.set(result.config)
    reloaded, error = await reload_daemon(request)
    await audit(request, principal, "zones.save", camera.id, zones=[z["id"] for z in zones],
                backup=result.backup.name if result.backup else None, reloaded=reloaded)
    return (result.backup.name if result.backup else None), reloaded, error


@router.post("/cameras/{camera_id}/zones")
async def save_zone_form(request: Request, camera_id: str, principal: Annotated[Principal, Depends(require_admin)],
                         zones: Annotated[str, Form(max_length=200_000)]) -> Response:
    """The zone editor's form: ``zones`` is the JSON list the editor script keeps up to date."""
    camera = _camera(request, camera_id)
    try:
        parsed = ZonesIn.model_validate({"zones": json.loads(zones)})
    except (ValueError, ValidationError) as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()] \
            if isinstance(exc, ValidationError) else [str(exc)]
        return await _camera_page(request, camera_id, problems=problems, status_code=422)
    try:
        _backup, reloaded, _error = await apply_zones(request, principal, camera,
                                                      [z.model_dump() for z in parsed.zones])
    except ConfigError as exc:
        return await _camera_page(request, camera_id, problems=exc.problems, status_code=422)
    except YamlEditError as exc:
        return await _camera_page(request, camera_id, problems=[str(exc)], status_code=422)
    msg = "zones.saved" if reloaded else "zones.saved_reload_failed"
    return RedirectResponse(f"/cameras/{camera_id}?msg={msg}", status_code=303)
