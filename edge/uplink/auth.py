"""OAuth2 client-credentials tokens for the platform, refreshed before expiry and on 401.

A refused token request is read both ways: the contract's ``{"code", "message", "suggestion"}``
and RFC 6749 section 5.2's ``{"error", "error_description", "error_uri"}``, which a real OAuth2
server sends (its ``error`` is mapped onto the contract's code table, ``edge.schemas.errors``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
from pydantic import SecretStr

from edge.clock import Clock, SystemClock
from edge.errors import UplinkError, UplinkUnavailable
from edge.schemas.errors import TOKEN_ERRORS

log = logging.getLogger(__name__)

REFRESH_MARGIN = 0.2  # refresh once 80 % of the lifetime has passed (and at least 30 s early)


class TokenManager:
    def __init__(self, client: httpx.AsyncClient, token_url: str, client_id: str, client_secret: SecretStr | None,
                 clock: Clock | None = None) -> None:
        self._client = client
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._clock = clock or SystemClock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()
        self.refreshes = 0

    def invalidate(self, token: str | None = None) -> None:
        """Forget the token (after a 401). ``token`` guards against dropping a newer one."""
        if token is None or token == self._token:
            self._token = None

    async def token(self) -> str:
        if self._token is not None and self._clock.monotonic() < self._refresh_at:
            return self._token
        async with self._lock:
            if self._token is not None and self._clock.monotonic() < self._refresh_at:
                return self._token
            return await self._fetch()

    async def _fetch(self) -> str:
        secret = self._client_secret.get_secret_value() if self._client_secret else ""
        try:
            response = await self._client.post(
                self._token_url,
                data={"grant_type": "client_credentials"},
                auth=(self._client_id, secret),
            )
        except httpx.HTTPError as exc:
            raise UplinkUnavailable(f"token endpoint unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise UplinkUnavailable(f"token endpoint answered {response.status_code}", code=str(response.status_code))
        if response.status_code != 200:
            code, message, suggestion = token_error(response)
            # Log the platform's words, never our secret.
            raise UplinkError(f"token request refused ({response.status_code} {code}): {message}",
                              code=code, suggestion=suggestion)
        body = response.json()
        self._token = str(body["access_token"])
        lifetime = float(body.get("expires_in", 3600))
        self._refresh_at = self._clock.monotonic() + max(1.0, min(lifetime * (1 - REFRESH_MARGIN), lifetime - 30))
        self.refreshes += 1
        log.info("uplink: new access token, valid %.0f s", lifetime)
        return self._token


def token_error(response: httpx.Response) -> tuple[str, str, str | None]:
    """``(code, message, suggestion)`` of a refused token request, from either error format."""
    body = _safe_json(response)
    rfc_error = body.get("error")
    code = body.get("code")
    if not isinstance(code, str):
        code = TOKEN_ERRORS.get(rfc_error, str(rfc_error)) if isinstance(rfc_error, str) else str(response.status_code)
    message = body.get("message") or body.get("error_description") or rfc_error or response.reason_phrase
    suggestion = body.get("suggestion")
    if suggestion is None and isinstance(body.get("error_uri"), str):
        suggestion = f"see {body['error_uri']}"
    return code, str(message), suggestion if isinstance(suggestion, str) else None


def _safe_json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
