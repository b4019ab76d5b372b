"""The HTTP part the webhook, WeCom and DingTalk notifiers share: one client, TLS on, errors mapped.

Robot keys and tokens travel in the query string (that is how those APIs work), so no URL is ever
put into a log line or an error message here: errors name the notifier and the status only.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx

from edge.alarms.notify import NotifyError


def make_client(timeout_s: float, ca_bundle: Path | None, verify_tls: bool) -> httpx.AsyncClient:
    verify: Any = True
    if ca_bundle is not None:
        verify = ssl.create_default_context(cafile=str(ca_bundle))
    elif not verify_tls:
        verify = False
    # trust_env=False: no proxy from the environment; we talk to the configured robot only.
    return httpx.AsyncClient(timeout=timeout_s, verify=verify, trust_env=False,
                             headers={"User-Agent": "estate-edge"})


async def post_json(client: httpx.AsyncClient, name: str, url: str, body: bytes,
                    params: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    """POST and map failures: network and 5xx/429 are retryable, other 4xx are not."""
    try:
        response = await client.post(url, content=body, params=params,
                                      headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})})
    except httpx.HTTPError as exc:
        raise NotifyError(f"{name}: {type(exc).__name__}") from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise NotifyError(f"{name}: HTTP {response.status_code}")
    if response.status_code >= 400:
        raise NotifyError(f"{name}: HTTP {response.status_code} (not retried)", retry=False)
    return response


def robot_result(name: str, response: httpx.Response, retry_codes: frozenset[int]) -> None:
    """WeCom and DingTalk answer HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}``; anything else failed."""
    try:
        body = response.json()
    except ValueError as exc:
        raise NotifyError(f"{name}: answer is not JSON") from exc
    code = body.get("errcode") if isinstance(body, dict) else None
    if code == 0:
        return
    message = str(body.get("errmsg", "")) if isinstance(body, dict) else ""
    retry = isinstance(code, int) and code in retry_codes
    raise NotifyError(f"{name}: errcode {code} {message[:200]}", retry=retry)
