"""Labelling and site models: the page where an installer boxes collected frames, and the model switch.

Pages and JSON share one router (``page_router``: CSRF-checked, path parameters checked, outside the
public OpenAPI schema); the JSON endpoints sit under ``/api/`` so that errors answer JSON, not a page.
Reading frames and scores needs a viewer; labelling, uploading, evaluating, activating and rolling
back need an admin (the installer), and every change is audited.

- ``GET  /labels``: the labelling page (``labels.html`` + ``static/labels.js``).
- ``GET  /api/labels/frames?camera=&state=``: frames kept for labelling, newest first.
- ``GET  /api/labels/frames/{camera}/{frame}``: one frame's sidecar (model proposals, labels, split).
- ``GET  /api/labels/image/{camera}/{frame}``: its JPEG.
- ``PUT  /api/labels/frames/{camera}/{frame}``: save boxes ``{"boxes": [{x1, y1, x2, y2, label}]}``.
- ``DELETE /api/labels/frames/{camera}/{frame}``: drop a useless frame.
- ``POST /api/labels/frames/{camera}?reason=false_alarm``: keep a JPEG staff marked (body: image/jpeg).
- ``GET  /api/labels/models``: per camera, the active model, the site's trained models, both scores.
- ``POST /api/labels/models/{camera}/evaluate`` ``{"card": name}``: both scores, nothing switched.
- ``POST /api/labels/models/{camera}/activate`` ``{"card": name}``: validate on the camera's hold-out
  labels; activated (config saved, daemon reloaded) only if better, else 409 with both scores.
- ``POST /api/labels/models/{camera}/rollback``: put back the model the camera ran before.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from edge.config.cameras import CameraConfig
from edge.config.training import TrainingConfig
from edge.errors import ConfigError
from edge.panel.cameras import jpeg_size
from edge.panel.routes.common import audit, page_router
from edge.panel.routes.reload import reload_daemon
from edge.panel.security import Principal, ctx_of, require_admin, require_viewer
from edge.panel.views import render
from edge.panel.yaml_edit import YamlEditError, set_camera_field
from edge.training.activation import (
    ModelBook,
    ModelChoice,
    compare,
    current_choice,
    model_value,
    site_cards,
    site_registry,
)
from edge.training.classes import HARD_NEGATIVES, SITE_CLASSES
from edge.training.collect import training_dir
from edge.training.errors import TrainingError
from edge.training.frames import REASONS, FrameRecord, FrameStore, validate_boxes

router = page_router()
MAX_UPLOAD = 8 * 1024 * 1024


class BoxIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x1: float
    y1: float
    x2: float
    y2: float
    label: str = Field(max_length=40)


class LabelsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    boxes: list[BoxIn] = Field(max_length=300)


class ActivateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    card: str = Field(min_length=1, max_length=64)


def _settings(request: Request) -> tuple[Path, TrainingConfig, FrameStore]:
    config = ctx_of(request).config.config
    if config is None:
        raise HTTPException(503, "no valid estate config loaded")
    root = training_dir(config.training, config.store.path)
    return root, config.training, FrameStore(root, int(config.training.quota_mb * 1024 * 1024))


def _camera(request: Request, camera_id: str) -> CameraConfig:
    camera = ctx_of(request).config.index.camera_by_id.get(camera_id)
    if camera is None:
        raise HTTPException(404, f"no camera {camera_id!r}")
    return camera


def _record(store: FrameStore, camera_id: str, frame_id: str) -> FrameRecord:
    try:
        return store.get(camera_id, frame_id)
    except (KeyError, TrainingError) as exc:
        raise HTTPException(404, f"camera {camera_id}: no frame {frame_id}") from exc


def _frame_json(record: FrameRecord, holdout_fraction: float) -> dict[str, Any]:
    return {**record.to_json(), "split": record.split(holdout_fraction), "labelled": record.labelled}


@router.get("/labels")
async def labels_page(request: Request, principal: Annotated[Principal, Depends(require_viewer)],
                      camera: str = "") -> Response:
    ctx = ctx_of(request)
    cameras = [{"id": c.id, "name": c.name} for c in ctx.config.index.cameras]
    return render(request, "labels.html", {
        "nav": "labels", "cameras": cameras, "camera": camera, "classes": SITE_CLASSES,
        "hard_negatives": HARD_NEGATIVES,
    })


@router.get("/api/labels/frames")
async def list_frames(request: Request, principal: Annotated[Principal, Depends(require_viewer)],
                      camera: Annotated[str, Query(max_length=64)] = "",
                      state: Literal["all", "unlabelled", "labelled"] = "all") -> JSONResponse:
    _root, settings, store = _settings(request)
    if camera:
        _camera(request, camera)
    try:
        records = await asyncio.to_thread(store.frames, camera or None)
    except TrainingError as exc:
        raise HTTPException(404, str(exc)) from exc
    if state != "all":
        records = [r for r in records if r.labelled == (state == "labelled")]
    records.reverse()
    return JSONResponse({"frames": [_frame_json(r, settings.holdout_fraction) for r in records[:2000]],
                         "total": len(records), "used_bytes": store.used_bytes(),
                         "quota_bytes": store.quota_bytes})


@router.get("/api/labels/frames/{camera_id}/{frame_id}")
async def get_frame(request: Request, camera_id: str, frame_id: str,
                    principal: Annotated[Principal, Depends(require_viewer)]) -> JSONResponse:
    _root, settings, store = _settings(request)
    return JSONResponse(_frame_json(_record(store, camera_id, frame_id), settings.holdout_fraction))


@router.get("/api/labels/image/{camera_id}/{frame_id}")
async def frame_image(request: Request, camera_id: str, frame_id: str,
                      principal: Annotated[Principal, Depends(require_viewer)]) -> Response:
    store = _settings(request)[2]
    record = _record(store, camera_id, frame_id)
    return FileResponse(store.image_path(record.camera_id, record.frame_id), media_type="image/jpeg",
                        headers={"cache-control": "private, max-age=3600"})


@router.put("/api/labels/frames/{camera_id}/{frame_id}")
async def save_labels(request: Request, camera_id: str, frame_id: str, body: LabelsIn,
                      principal: Annotated[Principal, Depends(require_admin)]) -> JSONResponse:
    _root, settings, store = _settings(request)
    record = _record(store, camera_id, frame_id)
    where = f"camera {camera_id}: frame {frame_id}"
    try:
        boxes = validate_boxes([b.model_dump() for b in body.boxes], record.width, record.height, where)
        saved = await asyncio.to_thread(store.save_labels, camera_id, frame_id, boxes, user=principal.username)
    except TrainingError as exc:
        raise HTTPException(422, str(exc)) from exc
    await audit(request, principal, "labels.save", f"{camera_id}/{frame_id}", boxes=len(boxes))
    return JSONResponse(_frame_json(saved, settings.holdout_fraction))


@router.delete("/api/labels/frames/{camera_id}/{frame_id}")
async def delete_frame(request: Request, camera_id: str, frame_id: str,
                       principal: Annotated[Principal, Depends(require_admin)]) -> JSONResponse:
    store = _settings(request)[2]
    _record(store, camera_id, frame_id)
    await asyncio.to_thread(store.delete, camera_id, frame_id)
    await audit(request, principal, "labels.delete", f"{camera_id}/{frame_id}")
    return JSONResponse({"deleted": frame_id})


@router.post("/api/labels/frames/{camera_id}")
async def upload_frame(request: Request, camera_id: str, principal: Annotated[Principal, Depends(require_admin)],
                       reason: Annotated[str, Query(max_length=20)] = "manual",
                       note: Annotated[str, Query(max_length=200)] = "") -> JSONResponse:
    """Keep a frame staff marked (a false or missed alarm): the body is the JPEG itself."""
    _root, settings, store = _settings(request)
    camera = _camera(request, camera_id)
    if reason not in REASONS:
        raise HTTPException(422, f"reason must be one of {', '.join(REASONS)}")
    body = await request.body()
    if len(body) > MAX_UPLOAD:
        raise HTTPException(413, f"frame is {len(body)} bytes, at most {MAX_UPLOAD}")
    size = _jpeg_size(body)
    if size is None:
        raise HTTPException(422, f"camera {camera_id}: the body is not a JPEG image")
    try:
        record = await asyncio.to_thread(store.add, camera.id, body, reason=reason, width=size[0], height=size[1],
                                         note=note)
    except TrainingError as exc:
        raise HTTPException(422, str(exc)) from exc
    if record is None:
        raise HTTPException(507, "the training frame quota is full of labelled frames")
    await audit(request, principal, "labels.upload", f"{camera_id}/{record.frame_id}", reason=reason)
    return JSONResponse(_frame_json(record, settings.holdout_fraction), status_code=201)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    return jpeg_size(data) if data.startswith(b"\xff\xd8") else None


@router.get("/api/labels/models")
async def models_state(request: Request, principal: Annotated[Principal, Depends(require_viewer)]) -> JSONResponse:
    root, settings, store = _settings(request)
    book = ModelBook(root)
    try:
        trained = await asyncio.to_thread(site_cards, root)
    except ConfigError as exc:
        raise HTTPException(500, str(exc)) from exc
    cameras = []
    for camera in ctx_of(request).config.index.cameras:
        entry = book.camera(camera.id)
        holdout = sum(1 for r in store.frames(camera.id) if r.labelled
                      and r.split(settings.holdout_fraction) == "holdout")
        cameras.append({"id": camera.id, "name": camera.name, "card": camera.model.card, "dir": camera.model.dir,
                        "holdout_frames": holdout, "can_rollback": bool(entry["history"]),
                        "history": entry["history"], "comparisons": entry["comparisons"][:3]})
    return JSONResponse({"cameras": cameras,
                         "models": [{"name": c.name, "sha256": c.sha256, "description": c.description}
                                    for c in trained]})


async def _apply(request: Request, principal: Principal, camera: CameraConfig, choice: ModelChoice,
                 action: str) -> tuple[bool, str | None]:
    ctx = ctx_of(request)
    text = ctx.files.read_text()
    try:
        new_text = set_camera_field(text, camera.id, "model", model_value(camera, choice))
        result = await ctx.files.save(new_text)
    except (ConfigError, YamlEditError) as exc:
        await audit(request, principal, action, camera.id, ok=False, card=choice.card, error=str(exc)[:300])
        problems = getattr(exc, "problems", None) or []
        raise HTTPException(422, "; ".join([str(exc), *problems])) from exc
    ctx.config.set(result.config)
    reloaded, error = await reload_daemon(request)
    await audit(request, principal, action, camera.id, card=choice.card, sha256=choice.sha256, reloaded=reloaded,
                backup=result.backup.name if result.backup else None)
    return reloaded, error


@router.post("/api/labels/models/{camera_id}/evaluate")
async def evaluate_model(request: Request, camera_id: str, body: ActivateIn,
                         principal: Annotated[Principal, Depends(require_admin)]) -> JSONResponse:
    """Score the camera's current model and ``card`` on its hold-out labels; changes nothing but the record."""
    root, settings, store = _settings(request)
    camera = _camera(request, camera_id)
    try:
        candidate = site_registry(root).card(body.card)
        comparison = await asyncio.to_thread(compare, camera, candidate, root, store, settings)
    except (ConfigError, TrainingError) as exc:
        raise HTTPException(422, str(exc)) from exc
    ModelBook(root).record_comparison(comparison)
    return JSONResponse({"comparison": comparison.as_dict()})


@router.post("/api/labels/models/{camera_id}/activate")
async def activate(request: Request, camera_id: str, body: ActivateIn,
                   principal: Annotated[Principal, Depends(require_admin)]) -> JSONResponse:
    root, settings, store = _settings(request)
    camera = _camera(request, camera_id)
    registry = site_registry(root)
    try:
        candidate = registry.card(body.card)
        previous, _card, _weights = current_choice(camera, registry)
        comparison = await asyncio.to_thread(compare, camera, candidate, root, store, settings)
    except (ConfigError, TrainingError) as exc:
        raise HTTPException(422, str(exc)) from exc
    book = ModelBook(root)
    book.record_comparison(comparison)
    if not comparison.better:
        await audit(request, principal, "model.activate", camera.id, ok=False, card=candidate.name,
                    reason=comparison.reason)
        return JSONResponse({"activated": False, "comparison": comparison.as_dict()}, status_code=409)
    choice = ModelChoice(candidate.name, str(root / "models"), candidate.sha256)
    reloaded, error = await _apply(request, principal, camera, choice, "model.activate")
    book.activated(camera.id, previous, choice)
    return JSONResponse({"activated": True, "reloaded": reloaded, "reload_error": error,
                         "comparison": comparison.as_dict()})


@router.post("/api/labels/models/{camera_id}/rollback")
async def rollback(request: Request, camera_id: str,
                   principal: Annotated[Principal, Depends(require_admin)]) -> JSONResponse:
    root = _settings(request)[0]
    camera = _camera(request, camera_id)
    book = ModelBook(root)
    previous = book.previous(camera.id)
    if previous is None:
        raise HTTPException(409, f"camera {camera_id}: no earlier model to go back to")
    reloaded, error = await _apply(request, principal, camera, previous, "model.rollback")
    book.rolled_back(camera.id)
    return JSONResponse({"rolled_back": True, "card": previous.card, "reloaded": reloaded, "reload_error": error})
