"""Installer tools: config check with errors in place, upload/download, backups, test device, discovery."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response

from edge.errors import ConfigError
from edge.panel.config_files import CheckResult
from edge.panel.hooks import DiscoveredDevice
from edge.panel.routes.bus_tools import bus_tools_context
from edge.panel.routes.common import audit, now_us, page_router
from edge.panel.routes.reload import reload_daemon
from edge.panel.security import Principal, ctx_of, require_admin
from edge.panel.views import render
from edge.probes import DeviceProbe

router = page_router()

FULL_LISTING_LINES = 400  # longer files show only the lines around each problem
CONTEXT_LINES = 3


@dataclass(frozen=True, slots=True)
class ListingLine:
    number: int | None  # None: a gap marker ("...")
    text: str
    problems: tuple[str, ...] = ()


def annotate(text: str, result: CheckResult) -> tuple[list[ListingLine], list[str]]:
    """The file's lines with each problem under the line it names; problems without a line apart."""
    by_line = result.by_line()
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    wanted: set[int] | None = None
    if len(lines) > FULL_LISTING_LINES:
        wanted = set()
        for number in by_line:
            if number is not None:
                wanted.update(range(max(1, number - CONTEXT_LINES), number + CONTEXT_LINES + 1))
    out: list[ListingLine] = []
    skipped = False
    for number, line in enumerate(lines, start=1):
        if wanted is not None and number not in wanted:
            skipped = True
            continue
        if skipped:
            out.append(ListingLine(None, "…"))
        skipped = False
        out.append(ListingLine(number, line, tuple(by_line.get(number, ()))))
    if skipped:
        out.append(ListingLine(None, "…"))
    beyond = [m for n, ms in by_line.items() if n is not None and n > len(lines) for m in ms]
    return out, list(by_line.get(None, [])) + beyond


async def _read_upload(request: Request, file: UploadFile | None, text: str | None) -> str:
    limit = ctx_of(request).settings.upload_max_kb * 1024
    if file is not None and file.filename:
        data = await file.read(limit + 1)
        if len(data) > limit:
            raise HTTPException(413, f"the file is larger than {limit // 1024} KiB")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HTTPException(422, f"the file is not UTF-8 text (byte {exc.start})") from None
    if text:
        if len(text.encode("utf-8")) > limit:
            raise HTTPException(413, f"the text is larger than {limit // 1024} KiB")
        return text
    raise HTTPException(422, "choose a file or paste the config")


def _tools_context(request: Request) -> dict[str, object]:
    ctx = ctx_of(request)
    return {
        "nav": "tools",
        "backups": [(p.name, p.stat().st_size) for p in ctx.files.backups()[:20]],
        "devices": ctx.config.index.devices,
        "has_test_device": ctx.hooks.test_device is not None,
        "has_discovery": ctx.hooks.discover is not None,
        "probe": ctx.tools.probe,
        "discovered": ctx.tools.discovered,
        "discovered_at": ctx.tools.discovered_at_us,
        **bus_tools_context(request),
    }


@router.get("/tools")
async def tools(request: Request, principal: Annotated[Principal, Depends(require_admin)], msg: str = "") -> Response:
    ctx = ctx_of(request)
    text, result = ctx.files.check_current()
    listing, general = annotate(text, result) if not result.ok else ([], [])
    config = result.config
    return render(request, "tools.html", {
        **_tools_context(request), "check": result, "listing": listing, "general": general,
        "checked_name": ctx.files.path.name, "summary": config and {
            "devices": len(config.devices), "buses": len(config.buses), "cameras": len(config.cameras)},
        "msg": msg if msg in ("config.uploaded", "config.uploaded_reload_failed") else "",
    })


@router.post("/tools/check")
async def check(request: Request, principal: Annotated[Principal, Depends(require_admin)],
                file: UploadFile | None = None, text: Annotated[str | None, Form(max_length=16_000_000)] = None,
                ) -> Response:
    ctx = ctx_of(request)
    content = await _read_upload(request, file, text)
    name = (file.filename if file is not None and file.filename else "pasted.yaml")[:100]
    result = ctx.files.check_text(content, source=name)
    listing, general = annotate(content, result) if not result.ok else ([], [])
    await audit(request, principal, "config.check", name, ok=result.ok, problems=len(result.problems))
    config = result.config
    return render(request, "tools.html", {
        **_tools_context(request), "check": result, "listing": listing, "general": general, "checked_name": name,
        "summary": config and {"devices": len(config.devices), "buses": len(config.buses),
                               "cameras": len(config.cameras)},
        "checked_upload": True,
    }, status_code=200 if result.ok else 422)


@router.post("/tools/upload")
async def upload(request: Request, principal: Annotated[Principal, Depends(require_admin)],
                 file: UploadFile | None = None, text: Annotated[str | None, Form(max_length=16_000_000)] = None,
                 ) -> Response:
    ctx = ctx_of(request)
    content = await _read_upload(request, file, text)
    name = (file.filename if file is not None and file.filename else "pasted.yaml")[:100]
    try:
        saved = await ctx.files.save(content)
    except ConfigError:
        result = ctx.files.check_text(content, source=name)
        listing, general = annotate(content, result)
        await audit(request, principal, "config.upload", name, ok=False, problems=len(result.problems))
        return render(request, "tools.html", {
            **_tools_context(request), "check": result, "listing": listing, "general": general,
            "checked_name": name, "summary": None, "checked_upload": True, "upload_refused": True,
        }, status_code=422)
    ctx.config.set(saved.config)
    reloaded, error = await reload_daemon(request)
    await audit(request, principal, "config.upload", name, backup=saved.backup.name if saved.backup else None,
                reloaded=reloaded, reload_error=error)
    msg = "config.uploaded" if reloaded else "config.uploaded_reload_failed"
    return RedirectResponse(f"/tools?msg={msg}", status_code=303)


@router.get("/tools/config.yaml")
async def download(request: Request, principal: Annotated[Principal, Depends(require_admin)]) -> Response:
    ctx = ctx_of(request)
    await audit(request, principal, "config.download", ctx.files.path.name)
    return FileResponse(ctx.files.path, media_type="application/yaml; charset=utf-8",
                        filename=ctx.files.path.name, headers={"cache-control": "no-store"})


@router.get("/tools/backups/{name}")
async def download_backup(request: Request, name: str,
                          principal: Annotated[Principal, Depends(require_admin)]) -> Response:
    ctx = ctx_of(request)
    match = next((p for p in ctx.files.backups() if p.name == name), None)  # only names we listed ourselves
    if match is None:
        raise HTTPException(404, "no such backup")
    await audit(request, principal, "config.download_backup", name)
    return FileResponse(match, media_type="application/yaml; charset=utf-8", filename=name)


async def run_test_device(request: Request, principal: Principal, device_id: str) -> DeviceProbe:
    ctx = ctx_of(request)
    if ctx.hooks.test_device is None:
        raise HTTPException(404, "this gateway has no test-device tool")
    if device_id not in ctx.config.index.by_id:
        raise HTTPException(404, f"no device {device_id!r} in the config")
    started = time.perf_counter()
    try:
        probe = await ctx.hooks.test_device(device_id)
    except Exception as exc:  # the tool reports failures; it must not take the page down
        probe = DeviceProbe(device_id, False, error=f"{type(exc).__name__}: {exc}",
                            duration_ms=(time.perf_counter() - started) * 1000)
    await audit(request, principal, "tools.test_device", device_id, ok=probe.ok, error=probe.error)
    ctx.tools.probe = probe
    return probe


async def run_discovery(request: Request, principal: Principal) -> list[DiscoveredDevice]:
    ctx = ctx_of(request)
    if ctx.hooks.discover is None:
        raise HTTPException(404, "this gateway has no discovery tool")
    found = await ctx.hooks.discover()
    configured = {c.host: c.id for c in ctx.config.index.cameras if c.host}
    marked = []
    for item in found:
        host = item.address
        for xaddr in item.xaddrs:
            host = xaddr.split("//", 1)[-1].split("/", 1)[0].split(":", 1)[0] or host
        marked.append(DiscoveredDevice(item.address, item.xaddrs, item.scopes, item.name, item.hardware,
                                       item.configured_as or configured.get(host) or configured.get(item.address)))
    ctx.tools.discovered = marked
    ctx.tools.discovered_at_us = now_us(ctx)
    await audit(request, principal, "tools.discovery", "", found=len(marked))
    return marked


@router.post("/tools/test-device")
async def test_device(request: Request, principal: Annotated[Principal, Depends(require_admin)],
                      device_id: Annotated[str, Form(max_length=64)]) -> Response:
    await run_test_device(request, principal, device_id)
    return RedirectResponse("/tools#test-device", status_code=303)


@router.post("/tools/discovery")
async def discovery(request: Request, principal: Annotated[Principal, Depends(require_admin)]) -> Response:
    await run_discovery(request, principal)
    return RedirectResponse("/tools#discovery", status_code=303)
