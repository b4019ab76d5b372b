"""Device list (search, filters, paging) and the device page (live values, 24 h and 7 d charts)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.responses import Response

from edge.bus_tools import LastMessage
from edge.panel.charts import line_chart
from edge.panel.devices import STATES, device_view, filter_devices
from edge.panel.i18n import translator
from edge.panel.live import RESOLUTIONS
from edge.panel.routes.common import clamp, now_us, page_router
from edge.panel.security import Principal, ctx_of, require_viewer
from edge.panel.views import language, render
from edge.panel.wording import Wording

router = page_router()

PAGE_SIZE = 50
RANGES: dict[str, tuple[int, str]] = {"24h": (24 * 3_600_000_000, "5m"), "7d": (7 * 24 * 3_600_000_000, "1h")}


def last_messages(request: Request) -> dict[str, LastMessage]:
    """What each MQTT, BLE and OPC-UA device last sent (from the running sources); empty without the hook."""
    tools = ctx_of(request).hooks.bus_tools
    return tools.last_messages() if tools is not None else {}


@router.get("/devices")
async def device_list(
    request: Request,
    principal: Annotated[Principal, Depends(require_viewer)],
    q: Annotated[str, Query(max_length=100)] = "",
    building: Annotated[str, Query(max_length=100)] = "",
    category: Annotated[str, Query(max_length=40)] = "",
    state: Annotated[str, Query(max_length=20)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    ctx = ctx_of(request)
    index = ctx.config.index
    views = filter_devices(index, ctx.live, now_us(ctx), q=q, building=building, category=category, state=state)
    pages = max(1, -(-len(views) // PAGE_SIZE))
    page = clamp(page, 1, pages)
    shown = views[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    return render(request, "devices.html", {
        "nav": "devices", "devices": shown, "total": len(views), "page": page, "pages": pages,
        "q": q, "building": building, "category": category, "state": state,
        "buildings": index.buildings, "categories": index.categories, "states": STATES,
        "latest": {v.id: ctx.live.latest(v.id) for v in shown},
        "last_messages": last_messages(request),
    })


@router.get("/devices/{device_id}")
async def device_page(request: Request, device_id: str, principal: Annotated[Principal, Depends(require_viewer)],
                      range: Annotated[str, Query(pattern="^(24h|7d)$")] = "24h") -> Response:
    ctx = ctx_of(request)
    device = ctx.config.index.by_id.get(device_id)
    if device is None:
        raise HTTPException(404, f"no device {device_id!r}")
    now = now_us(ctx)
    view = device_view(device, ctx.live, now)
    latest = ctx.live.latest(device_id)
    span, resolution = RANGES[range]
    width = RESOLUTIONS[resolution][0]
    t = translator(language(request))
    w = Wording(language(request), {})
    charts = []
    for point in sorted(set(latest) | set(device.thresholds)):
        buckets = await ctx.live.series(device_id, point, resolution, now - span)
        threshold = device.thresholds.get(point)
        limits = []
        if threshold is not None:
            limits = [(t("device.low"), threshold.low), (t("device.high"), threshold.high)]
        unit = latest[point].unit if point in latest else ""
        charts.append((point, line_chart(
            buckets, start_us=now - span, end_us=now, bucket_us=width, tz=ctx.config.tz, unit=unit,
            title=f"{device.name} · {w.point(point, device)}", limits=[(n, v) for n, v in limits if v is not None],
            empty_text=t("chart.no_data"),
        ), buckets[-1] if buckets else None))
    alarms = await ctx.store.alarms.open_of_device(device_id, 20)
    return render(request, "device.html", {
        "nav": "devices", "d": device, "view": view, "latest": latest, "charts": charts, "range": range,
        "alarms": alarms, "last_message_of": last_messages(request).get(device_id),
    })
