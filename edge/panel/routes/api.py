"""The JSON API behind the pages (``/api/v1``). Same services, same roles, same CSRF rule as the pages.

Authentication is the panel's session cookie (log in through ``/login``); ``GET /api/v1/me`` returns
the CSRF token that every POST/PUT/PATCH/DELETE must send as ``X-CSRF-Token``. The OpenAPI schema
and its docs page are for admins only (``routes.system``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel

from edge.errors import ConfigError
from edge.panel import api_models as m
from edge.panel.alarm_actions import AlarmActionError
from edge.panel.alarm_queries import AlarmQuery, AlarmRow, change_marker, get_alarm, list_alarms
from edge.panel.cameras import camera_view
from edge.panel.devices import DeviceView, device_view, filter_devices
from edge.panel.passwords import PasswordPolicyError
from edge.panel.roles import Role
from edge.panel.routes.cameras import apply_zones
from edge.panel.routes.common import audit, iso_or_none, now_us, refresh_config
from edge.panel.routes.devices import RANGES
from edge.panel.routes.reload import reload_daemon
from edge.panel.routes.tools import run_discovery, run_test_device
from edge.panel.security import (
    Principal,
    csrf_protect,
    ctx_of,
    require_admin,
    require_operator,
    require_viewer,
    safe_path_params,
)
from edge.panel.users import User, UserError
from edge.panel.views import explain
from edge.panel.yaml_edit import YamlEditError
from edge.store.codec import iso


class ErrorOut(BaseModel):
    detail: Any


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not logged in"},
    403: {"model": ErrorOut, "description": "Role too low, or CSRF check failed"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "Not found"}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ErrorOut, "description": "Not possible in this state"}}

router = APIRouter(prefix="/api/v1", tags=["panel"], responses=ERRORS,
                   dependencies=[Depends(safe_path_params), Depends(csrf_protect), Depends(refresh_config)])

Viewer = Annotated[Principal, Depends(require_viewer)]
Operator = Annotated[Principal, Depends(require_operator)]
Admin = Annotated[Principal, Depends(require_admin)]
Text = Annotated[str, Query(max_length=100)]


@router.get("/me", response_model=m.Me)
async def me(principal: Viewer) -> m.Me:
    return m.Me(username=principal.username, role=principal.role, csrf_token=principal.session.csrf_token)


# ------------------------------------------------------------------------------------------------ overview
@router.get("/overview", response_model=m.OverviewOut)
async def overview(request: Request, principal: Viewer) -> m.OverviewOut:
    ctx = ctx_of(request)
    o = await ctx.overview.snapshot(ctx.config.index)
    estate = ctx.config.config.estate if ctx.config.config else None
    return m.OverviewOut(
        estate_id=estate.id if estate else None, estate_name=estate.name if estate else None,
        devices=o.states, open_alarms=o.open_alarms, alarms_by_severity=o.alarms_by_severity,
        buildings=[m.BuildingOut(name=b.name, devices=b.devices, online=b.online, offline=b.offline,
                                 unknown=b.unknown, disabled=b.disabled, open_alarms=b.open_alarms)
                   for b in o.buildings],
        uplink_backlog=[m.LaneBacklogOut(lane=b.lane.value, pending=b.pending, oldest_age_s=b.oldest_age_s)
                        for b in o.backlog],
        dead_letters=o.dead_letters, uplink=o.uplink,
        indicators=[m.IndicatorOut(code=i.code, granularity=i.granularity, period_start=iso(i.period_start_us),
                                   period_end=iso(i.period_end_us), value=i.value, unit=i.unit,
                                   coverage=i.coverage, samples=i.samples) for i in o.indicators],
    )


# ------------------------------------------------------------------------------------------------ devices
def _device_out(v: DeviceView) -> m.DeviceOut:
    d = v.config
    loc = d.location
    return m.DeviceOut(id=d.id, name=d.name, category=d.category, bus=d.bus, profile=d.profile,
                       location=m.LocationOut(building=loc.building, unit=loc.unit, floor=loc.floor, room=loc.room),
                       state=v.state, last_seen=iso_or_none(v.last_seen_us), error=v.error)


@router.get("/devices", response_model=m.DeviceListOut)
async def devices(request: Request, principal: Viewer, q: Text = "", building: Text = "", category: Text = "",
                  state: Text = "", offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100) -> m.DeviceListOut:
    ctx = ctx_of(request)
    views = filter_devices(ctx.config.index, ctx.live, now_us(ctx), q=q, building=building, category=category,
                           state=state)
    return m.DeviceListOut(total=len(views), offset=offset, limit=limit,
                           devices=[_device_out(v) for v in views[offset:offset + limit]])


@router.get("/devices/{device_id}", response_model=m.DeviceDetailOut, responses=NOT_FOUND)
async def device(request: Request, device_id: str, principal: Viewer) -> m.DeviceDetailOut:
    ctx = ctx_of(request)
    config = ctx.config.index.by_id.get(device_id)
    if config is None:
        raise HTTPException(404, f"no device {device_id!r}")
    out = _device_out(device_view(config, ctx.live, now_us(ctx)))
    latest = [m.LatestOut(point=p, value=v.value, unit=v.unit, quality=v.quality.label, ts=iso(v.ts_us))
              for p, v in sorted(ctx.live.latest(device_id).items())]
    return m.DeviceDetailOut(**out.model_dump(), poll_interval_s=config.poll_interval_s, sub_item=config.sub_item,
                             latest=latest, thresholds={p: t.model_dump() for p, t in config.thresholds.items()})


@router.get("/devices/{device_id}/series", response_model=m.SeriesOut, responses=NOT_FOUND)
async def series(request: Request, device_id: str, principal: Viewer,
                 point: Annotated[str, Query(min_length=1, max_length=64)],
                 range: Annotated[str, Query(pattern="^(24h|7d)$")] = "24h") -> m.SeriesOut:
    ctx = ctx_of(request)
    if device_id not in ctx.config.index.by_id:
        raise HTTPException(404, f"no device {device_id!r}")
    span, resolution = RANGES[range]
    buckets = await ctx.live.series(device_id, point, resolution, now_us(ctx) - span)
    return m.SeriesOut(device_id=device_id, point=point, range=range, resolution=resolution,
                       buckets=[m.BucketOut(start=iso(b.start_us), min=b.vmin, max=b.vmax, avg=b.avg, last=b.last,
                                            n=b.n) for b in buckets])



# ------------------------------------------------------------------------------------------------ alarms
def _alarm_out(a: AlarmRow, names: dict[str, str]) -> dict[str, Any]:
    return {
        "alarm_id": a.alarm_id, "code": a.code, "device_id": a.device_id,
        "device_name": names.get(a.device_id or ""), "severity": a.severity, "state": a.state,
        "is_open": a.is_open, "message": a.message, "raised_at": iso(a.raised_us),
        "acknowledged_at": iso_or_none(a.acked_us), "acknowledged_by": a.acked_by,
        "resolved_at": iso_or_none(a.resolved_us), "resolved_by": a.resolved_by,
        "cleared_at": iso_or_none(a.cleared_us), "note": a.note,
        "evidence_url": f"/evidence/{a.evidence_path}" if a.evidence_path else None,
    }


@router.get("/alarms", response_model=m.AlarmListOut)
async def alarms(request: Request, principal: Viewer, f: Annotated[AlarmQuery, Query()],
                 order: Annotated[str, Query(pattern="^(time|severity)$")] = "time",
                 offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50) -> m.AlarmListOut:
    ctx = ctx_of(request)
    index = ctx.config.index
    page = await list_alarms(ctx.store, f.to_filter(index, ctx.config.tz), limit=limit, offset=offset, order=order)
    return m.AlarmListOut(total=page.total, offset=offset, limit=limit, marker=await change_marker(ctx.store),
                          alarms=[m.AlarmOut(**_alarm_out(a, index.names)) for a in page.rows])


@router.get("/alarms/{alarm_id}", response_model=m.AlarmDetailOut, responses=NOT_FOUND)
async def alarm(request: Request, alarm_id: str, principal: Viewer) -> m.AlarmDetailOut:
    ctx = ctx_of(request)
    found = await get_alarm(ctx.store, alarm_id)
    if found is None:
        raise HTTPException(404, f"no alarm {alarm_id!r}")
    row, steps = found
    return m.AlarmDetailOut(**_alarm_out(row, ctx.config.index.names), data=row.data, steps=[
        m.AlarmStepOut(id=s.id, state=s.state, ts=iso(s.ts_us), actor=s.actor, message=s.message, note=s.note,
                       evidence_url=f"/evidence/{s.evidence_path}" if s.evidence_path else None) for s in steps])


async def _alarm_action(request: Request, principal: Principal, alarm_id: str, body: m.NoteIn,
                        action: str) -> m.ActionOut:
    ctx = ctx_of(request)
    try:
        if action == "acknowledge":
            await ctx.alarms.acknowledge(alarm_id, principal.username, body.note)
        else:
            await ctx.alarms.resolve(alarm_id, principal.username, body.note)
    except AlarmActionError as exc:
        await audit(request, principal, f"alarm.{action}", alarm_id, ok=False, reason=exc.code)
        raise HTTPException(exc.status, f"{exc.code}: {exc}") from exc
    await audit(request, principal, f"alarm.{action}", alarm_id, note=body.note[:500])
    found = await get_alarm(ctx.store, alarm_id)
    return m.ActionOut(ok=True, alarm_id=alarm_id, state=found[0].state if found else action)


_ACTION_ERRORS = {**NOT_FOUND, **CONFLICT}


@router.post("/alarms/{alarm_id}/acknowledge", response_model=m.ActionOut, responses=_ACTION_ERRORS)
async def acknowledge(request: Request, alarm_id: str, body: m.NoteIn, principal: Operator) -> m.ActionOut:
    return await _alarm_action(request, principal, alarm_id, body, "acknowledge")


@router.post("/alarms/{alarm_id}/resolve", response_model=m.ActionOut, responses=_ACTION_ERRORS)
async def resolve(request: Request, alarm_id: str, body: m.NoteIn, principal: Operator) -> m.ActionOut:
    return await _alarm_action(request, principal, alarm_id, body, "resolve")


# ------------------------------------------------------------------------------------------------ cameras
async def _camera_out(request: Request, camera_id: str) -> m.CameraOut:
    ctx = ctx_of(request)
    camera = ctx.config.index.camera_by_id.get(camera_id)
    if camera is None:
        raise HTTPException(404, f"no camera {camera_id!r}")
    view = await camera_view(ctx.store, ctx.hooks, camera)
    frame = view.frame
    return m.CameraOut(
        id=camera.id, name=camera.name, building=camera.location.building, enabled=camera.enabled,
        zones=[m.ZoneOut(id=z.id, kind=z.kind, name=z.name, points=[m.Point(x=x, y=y) for x, y in z.polygon])
               for z in camera.zones],
        frame_url=f"/cameras/{camera.id}/frame.jpg" if frame else None,
        frame_width=frame.width if frame else None, frame_height=frame.height if frame else None,
        detections=[m.DetectionOut(label=d.label, score=d.score, x1=d.x1, y1=d.y1, x2=d.x2, y2=d.y2)
                    for d in (frame.detections if frame else ())],
        detections_at=iso(frame.ts_us) if frame else None,
    )


@router.get("/cameras", response_model=list[m.CameraOut])
async def cameras(request: Request, principal: Viewer) -> list[m.CameraOut]:
    return [await _camera_out(request, c.id) for c in ctx_of(request).config.index.cameras]


@router.get("/cameras/{camera_id}", response_model=m.CameraOut, responses=NOT_FOUND)
async def camera(request: Request, camera_id: str, principal: Viewer) -> m.CameraOut:
    return await _camera_out(request, camera_id)


@router.put("/cameras/{camera_id}/zones", response_model=m.SaveOut,
            responses={**NOT_FOUND, 422: {"model": ErrorOut, "description": "The resulting config is invalid"}})
async def put_zones(request: Request, camera_id: str, body: m.ZonesIn, principal: Admin) -> m.SaveOut:
    ctx = ctx_of(request)
    camera = ctx.config.index.camera_by_id.get(camera_id)
    if camera is None:
        raise HTTPException(404, f"no camera {camera_id!r}")
    try:
        backup, reloaded, error = await apply_zones(request, principal, camera, [z.model_dump() for z in body.zones])
    except ConfigError as exc:
        raise HTTPException(422, exc.problems) from exc
    except YamlEditError as exc:
        raise HTTPException(422, [str(exc)]) from exc
    return m.SaveOut(ok=True, backup=backup, reloaded=reloaded, reload_error=error)


# ------------------------------------------------------------------------------------------------ config and tools
@router.get("/config", response_class=PlainTextResponse,
            responses={200: {"content": {"application/yaml": {}}, "description": "The estate YAML"}})
async def get_config(request: Request, principal: Admin) -> Response:
    ctx = ctx_of(request)
    await audit(request, principal, "config.download", ctx.files.path.name)
    return PlainTextResponse(ctx.files.read_text(), media_type="application/yaml; charset=utf-8")


def _check_out(result: Any) -> m.CheckOut:
    return m.CheckOut(ok=result.ok, problems=[m.ProblemOut(line=line, message=msg) for line, msg in result.problems])


@router.post("/config/check", response_model=m.CheckOut)
async def check_config(request: Request, body: m.ConfigTextIn, principal: Admin) -> m.CheckOut:
    result = ctx_of(request).files.check_text(body.text, source="upload.yaml")
    await audit(request, principal, "config.check", "api", ok=result.ok, problems=len(result.problems))
    return _check_out(result)


@router.put("/config", response_model=m.SaveOut,
            responses={422: {"model": m.CheckOut, "description": "The config is invalid; nothing was changed"}})
async def put_config(request: Request, body: m.ConfigTextIn, principal: Admin) -> Response | m.SaveOut:
    ctx = ctx_of(request)
    if len(body.text.encode("utf-8")) > ctx.settings.upload_max_kb * 1024:
        raise HTTPException(413, f"the config is larger than {ctx.settings.upload_max_kb} KiB")
    try:
        saved = await ctx.files.save(body.text)
    except ConfigError:
        result = ctx.files.check_text(body.text, source="upload.yaml")
        await audit(request, principal, "config.upload", "api", ok=False, problems=len(result.problems))
        return Response(_check_out(result).model_dump_json(), status_code=422, media_type="application/json")
    ctx.config.set(saved.config)
    reloaded, error = await reload_daemon(request)
    await audit(request, principal, "config.upload", "api", backup=saved.backup.name if saved.backup else None,
                reloaded=reloaded, reload_error=error)
    return m.SaveOut(ok=True, backup=saved.backup.name if saved.backup else None, reloaded=reloaded,
                     reload_error=error)


@router.post("/tools/test-device", response_model=m.ProbeOut, responses=NOT_FOUND)
async def test_device(request: Request, body: m.TestDeviceIn, principal: Admin) -> m.ProbeOut:
    p = await run_test_device(request, principal, body.device_id)
    return m.ProbeOut(device_id=p.device_id, ok=p.ok, error=p.error, duration_ms=p.duration_ms,
                      frames=[m.FrameOut(direction=f.direction, hex=f.hex, note=f.note) for f in p.frames],
                      values=[m.ProbeValueOut(point=v.point, value=v.value, unit=v.unit, raw=v.raw) for v in p.values])


@router.post("/tools/discovery", response_model=list[m.DiscoveredOut], responses=NOT_FOUND)
async def discovery(request: Request, principal: Admin) -> list[m.DiscoveredOut]:
    found = await run_discovery(request, principal)
    return [m.DiscoveredOut(address=d.address, xaddrs=list(d.xaddrs), scopes=list(d.scopes), name=d.name,
                            hardware=d.hardware, configured_as=d.configured_as) for d in found]


# ------------------------------------------------------------------------------------------------ users and audit
def _user_out(user: User, now: int, throttled: bool = False) -> m.UserOut:
    return m.UserOut(username=user.username, role=user.role, enabled=user.enabled,
                     locked=user.locked(now) or throttled,
                     created_at=iso(user.created_us), last_login_at=iso_or_none(user.last_login_us))


@router.get("/users", response_model=list[m.UserOut])
async def users(request: Request, principal: Admin) -> list[m.UserOut]:
    ctx = ctx_of(request)
    now = now_us(ctx)
    return [_user_out(u, now, ctx.throttle.throttled(u.username)) for u in await ctx.users.all()]


@router.post("/users", response_model=m.UserOut, status_code=201, responses={**CONFLICT, 422: {"model": ErrorOut}})
async def create_user(request: Request, body: m.UserIn, principal: Admin) -> m.UserOut:
    ctx = ctx_of(request)
    try:
        user = await ctx.users.create(body.username, body.password, body.role)
    except PasswordPolicyError as exc:
        raise HTTPException(422, f"{exc.code}: {explain(request, exc.code, **exc.params)}") from exc
    except UserError as exc:
        raise HTTPException(409 if exc.code == "user.exists" else 422, f"{exc.code}: {exc}") from exc
    await audit(request, principal, "user.create", body.username, role=body.role.value)
    return _user_out(user, now_us(ctx))


@router.patch("/users/{username}", response_model=m.UserOut,
              responses={**NOT_FOUND, **CONFLICT, 422: {"model": ErrorOut}})
async def patch_user(request: Request, username: str, body: m.UserPatch, principal: Admin) -> m.UserOut:
    ctx = ctx_of(request)
    user = await ctx.users.by_name(username)
    if user is None:
        raise HTTPException(404, f"no user {username!r}")
    self_edit = user.user_id == principal.user.user_id
    try:
        if self_edit and (body.enabled is False or body.role not in (None, Role.ADMIN)):
            raise UserError("user.not_self", "you can not disable or demote your own account")
        if body.role is not None and body.role is not user.role:
            await ctx.users.set_role(user, body.role)
            await ctx.sessions.delete_for_user(user.user_id, keep_hash=principal.session.token_hash)
        if body.enabled is not None and body.enabled != user.enabled:
            await ctx.users.set_enabled(user, body.enabled)
            if not body.enabled:
                await ctx.sessions.delete_for_user(user.user_id)
        if body.unlock:
            await ctx.users.unlock(user)
            ctx.throttle.clear(user.username)
        if body.password is not None:
            await ctx.users.set_password(user, body.password)
            await ctx.sessions.delete_for_user(user.user_id, keep_hash=principal.session.token_hash)
    except PasswordPolicyError as exc:
        raise HTTPException(422, f"{exc.code}: {explain(request, exc.code, **exc.params)}") from exc
    except UserError as exc:
        await audit(request, principal, "user.update", username, ok=False, reason=exc.code)
        raise HTTPException(409, f"{exc.code}: {exc}") from exc
    detail: dict[str, Any] = body.model_dump(exclude_none=True, exclude={"password"})
    if body.password is not None:
        detail["password"] = "changed"  # noqa: S105 - an audit fact, never the password
    await audit(request, principal, "user.update", username, **detail)
    updated = await ctx.users.by_name(username)
    assert updated is not None
    return _user_out(updated, now_us(ctx))


@router.delete("/users/{username}", status_code=204, responses={**NOT_FOUND, **CONFLICT})
async def delete_user(request: Request, username: str, principal: Admin) -> Response:
    ctx = ctx_of(request)
    user = await ctx.users.by_name(username)
    if user is None:
        raise HTTPException(404, f"no user {username!r}")
    try:
        if user.user_id == principal.user.user_id:
            raise UserError("user.not_self", "you can not delete your own account")
        await ctx.users.delete(user)
    except UserError as exc:
        raise HTTPException(409, f"{exc.code}: {exc}") from exc
    await ctx.sessions.delete_for_user(user.user_id)
    await audit(request, principal, "user.delete", username)
    return Response(status_code=204)


@router.get("/audit", response_model=list[m.AuditOut])
async def audit_entries(request: Request, principal: Admin, username: Annotated[str | None, Query(max_length=64)] = None,
                        action: Annotated[str | None, Query(max_length=64)] = None,
                        q: Annotated[str | None, Query(max_length=100)] = None,
                        before: Annotated[str | None, Query(max_length=32)] = None,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[m.AuditOut]:
    entries = await ctx_of(request).audit.search(username=username, action=action, q=q, before_id=before, limit=limit)
    return [m.AuditOut(id=e.id, ts=iso(e.ts_us), username=e.username, action=e.action, target=e.target,
                       detail=e.detail, ip=e.ip, ok=e.ok) for e in entries]

