"""Rendering pages: the template environment, what every page gets, and value formatting.

Jinja2 autoescapes every ``{{ }}`` in ``.html`` templates, so a device named
``<script>alert(1)</script>`` or an alarm note with markup is shown as text, never run; the CSP
(``script-src 'self'``) is the second line of defence. Templates never use ``|safe`` on data; the
only ``Markup`` they receive is the SVG from ``charts`` (built from numbers and escaped text).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from edge.panel.i18n import LANGUAGE_NAMES, pick_language, translator
from edge.panel.roles import Role
from edge.panel.security import LANG_COOKIE, Principal, csrf_token_for, ctx_of, set_cookie
from edge.panel.wording import Wording, labels_of

TEMPLATES_DIR = Path(__file__).parent / "templates"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.trim_blocks = True
    env.lstrip_blocks = True
    env.filters["num"] = fmt_number
    env.filters["duration"] = fmt_duration
    env.globals["Role"] = Role
    return templates


def fmt_number(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 10 ** -digits):
        return f"{value:.{digits}g}"
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text or "0"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def language(request: Request) -> str:
    if not hasattr(request.state, "lang"):
        request.state.lang = pick_language(request.cookies.get(LANG_COOKIE), ctx_of(request).settings.language)
    lang: str = request.state.lang  # starlette's State is untyped
    return lang


def explain(request: Request, key: str, **values: object) -> str:
    """A catalogue text in this request's language (for reasons built in code, e.g. a refused password)."""
    return translator(language(request))(key, **values)


def page_url(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one); for paging and filters."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


def render(request: Request, template: str, context: dict[str, Any] | None = None, *,
           status_code: int = 200) -> HTMLResponse:
    ctx = ctx_of(request)
    lang = language(request)
    tz = ctx.config.tz
    cookies: dict[str, str] = {}
    principal: Principal | None = getattr(request.state, "principal", None)

    def fmt_ts(us: int | None, seconds: bool = True) -> str:
        if us is None:
            return "–"
        local = datetime.fromtimestamp(us / 1e6, UTC).astimezone(tz)
        return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")

    values: dict[str, Any] = {
        "t": translator(lang),
        "lang": lang,
        "languages": LANGUAGE_NAMES,
        "user": principal,
        "csrf_token": csrf_token_for(request, cookies),
        "estate": ctx.config.config.estate if ctx.config.config else None,
        "config_problems": ctx.config.problems,
        # Every page, logged in or not: an insecure platform link must not go unnoticed (issue 10, defect 9).
        "lab_mode": bool(ctx.config.config and ctx.config.config.platform.lab_mode_insecure),
        "demo_mode": bool(ctx.config.config and ctx.config.config.estate.demo),  # simulators: say so on every page
        "w": Wording(lang, labels_of(ctx.config.config)),  # stored messages and point names in the viewer's language
        "fmt_ts": fmt_ts,
        "page_url": lambda **kw: page_url(request, **kw),
        "path": request.url.path,
        "full_path": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }
    if context:
        values.update(context)
    response = ctx.templates.TemplateResponse(request, template, values, status_code=status_code)
    for name, value in cookies.items():
        set_cookie(request, response, name, value)
    response.headers["content-language"] = "zh-CN" if lang == "zh" else "en"
    return response
