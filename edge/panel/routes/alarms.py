"""Alarm pages: the live list (polled), history search, CSV export, one alarm with ack/resolve, evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from edge.panel.alarm_actions import AlarmActionError
from edge.panel.alarm_queries import STATES, AlarmQuery, change_marker, codes, export_csv, get_alarm, list_alarms
from edge.panel.overview import SEVERITIES
from edge.panel.routes.common import audit, page_router
from edge.panel.security import Principal, ctx_of, require_operator, require_viewer
from edge.panel.views import render
from edge.store import codec

router = page_router()

PAGE_SIZE = 50
Filters = Annotated[AlarmQuery, Query()]  # one filter model for the live list, the history and the export
Page = Annotated[int, Query(ge=1, le=100_000)]


@router.get("/alarms")
async def live_list(request: Request, principal: Annotated[Principal, Depends(require_viewer)], f: Filters,
                    page: Page = 1) -> Response:
    ctx = ctx_of(request)
    flt = f.to_filter(ctx.config.index, ctx.config.tz, open=True)
    result = await list_alarms(ctx.store, flt, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, order="severity")
    return render(request, "alarms.html", {
        "nav": "alarms", "result": result, "page": page, "pages": max(1, -(-result.total // PAGE_SIZE)),
        "marker": await change_marker(ctx.store), "severities": SEVERITIES, "states": STATES,
        "buildings": ctx.config.index.buildings, "names": ctx.config.index.names,
        "f": f.model_dump(include={"severity", "state", "building", "device", "q"}),
    })


@router.get("/alarms/rows")
async def live_rows(request: Request, principal: Annotated[Principal, Depends(require_viewer)], f: Filters,
                    page: Page = 1) -> Response:
    """The live list's rows only; 304 while nothing changed (the browser polls with If-None-Match)."""
    ctx = ctx_of(request)
    marker = await change_marker(ctx.store)
    etag = f'"{marker}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"etag": etag})
    flt = f.to_filter(ctx.config.index, ctx.config.tz, open=True)
    result = await list_alarms(ctx.store, flt, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, order="severity")
    response = render(request, "_alarm_rows.html", {"result": result, "names": ctx.config.index.names})
    response.headers["etag"] = etag
    response.headers["x-alarm-total"] = str(result.total)
    return response


@router.get("/alarms/history")
async def history(request: Request, principal: Annotated[Principal, Depends(require_viewer)], f: Filters,
                  page: Page = 1) -> Response:
    ctx = ctx_of(request)
    flt = f.to_filter(ctx.config.index, ctx.config.tz)
    result = await list_alarms(ctx.store, flt, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return render(request, "alarm_history.html", {
        "nav": "history", "result": result, "page": page, "pages": max(1, -(-result.total // PAGE_SIZE)),
        "severities": SEVERITIES, "states": STATES, "codes": await codes(ctx.store),
        "buildings": ctx.config.index.buildings, "names": ctx.config.index.names,
        "f": f.model_dump(include={"since", "until", "severity", "state", "code", "building", "device", "q"}),
        "export_query": request.url.query,
    })


@router.get("/alarms/export.csv")
async def export(request: Request, principal: Annotated[Principal, Depends(require_viewer)], f: Filters) -> Response:
    ctx = ctx_of(request)
    flt = f.to_filter(ctx.config.index, ctx.config.tz)
    tz = ctx.config.tz

    def fmt(us: int | None) -> str:
        if us is None:
            return ""
        return datetime.fromtimestamp(us / 1e6, tz).isoformat(timespec="seconds")

    index = ctx.config.index
    await audit(request, principal, "alarms.export", request.url.query[:200])
    stamp = datetime.now(tz).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        export_csv(ctx.store, flt, names=index.names, buildings=index.building_of, fmt=fmt),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="alarms-{stamp}.csv"'},
    )


@router.get("/alarms/{alarm_id}")
async def alarm_page(request: Request, alarm_id: str, principal: Annotated[Principal, Depends(require_viewer)],
                     msg: str = "") -> Response:
    return await _alarm_page(request, alarm_id, msg=msg)


async def _alarm_page(request: Request, alarm_id: str, *, msg: str = "", error: str | None = None,
                      note: str = "", status_code: int = 200) -> Response:
    ctx = ctx_of(request)
    found = await get_alarm(ctx.store, alarm_id[:64])
    if found is None:
        raise HTTPException(404, f"no alarm {alarm_id!r}")
    alarm, steps = found
    return render(request, "alarm.html", {
        "nav": "alarms", "a": alarm, "steps": steps, "names": ctx.config.index.names,
        "device": ctx.config.index.by_id.get(alarm.device_id or ""),
        "msg": msg if msg in ("alarm.acked", "alarm.resolved") else "", "error": error, "note": note,
    }, status_code=status_code)


async def _act(request: Request, principal: Principal, alarm_id: str, note: str, action: str) -> Response:
    ctx = ctx_of(request)
    try:
        if action == "acknowledge":
            await ctx.alarms.acknowledge(alarm_id, principal.username, note)
        else:
            await ctx.alarms.resolve(alarm_id, principal.username, note)
    except AlarmActionError as exc:
        await audit(request, principal, f"alarm.{action}", alarm_id, ok=False, reason=exc.code)
        if exc.status == 404:
            raise HTTPException(404, str(exc)) from exc
        return await _alarm_page(request, alarm_id, error=exc.code, note=note, status_code=exc.status)
    await audit(request, principal, f"alarm.{action}", alarm_id, note=note[:500])
    done = "alarm.acked" if action == "acknowledge" else "alarm.resolved"
    return RedirectResponse(f"/alarms/{alarm_id}?msg={done}", status_code=303)


@router.post("/alarms/{alarm_id}/ack")
async def acknowledge(request: Request, alarm_id: str, principal: Annotated[Principal, Depends(require_operator)],
                      note: Annotated[str, Form(max_length=4000)] = "") -> Response:
    return await _act(request, principal, alarm_id, note, "acknowledge")


@router.post("/alarms/{alarm_id}/resolve")
async def resolve(request: Request, alarm_id: str, principal: Annotated[Principal, Depends(require_operator)],
                  note: Annotated[str, Form(max_length=4000)] = "") -> Response:
    return await _act(request, principal, alarm_id, note, "resolve")


@router.get("/evidence/{name}")
async def evidence(request: Request, name: str, principal: Annotated[Principal, Depends(require_viewer)]) -> Response:
    """An evidence JPEG by file name.

    ``Store.evidence_file`` refuses separators, dot files and anything that does not resolve to a file
    directly inside the evidence directory (path traversal).

    Where a record has a separate panel copy (the estate's privacy policy blurs the two copies
    differently, ``edge.config.privacy``), the uploaded copy is not served: the panel shows what the
    estate decided staff on the box see, even to someone who guesses the other file's name.
    """
    store = ctx_of(request).store
    path = store.evidence_file(name)
    local = codec.panel_copy_name(name)
    if path is None or (local is not None and store.evidence_file(local) is not None):
        raise HTTPException(404, "no such evidence file")
    return FileResponse(path, media_type="image/jpeg", headers={"cache-control": "private, max-age=86400"})


