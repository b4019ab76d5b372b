"""The client acts on the platform's answers by the contract's error table; the token client reads RFC 6749.

The real ``PlatformClient`` and ``TokenManager`` over ``httpx.MockTransport`` (the in-memory transport
the house style asks for); each answer is built by ``error_body``, the function the platform
simulator answers with, so client and simulator cannot disagree on a code.
"""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from edge.errors import UplinkError, UplinkRejected, UplinkUnavailable
from edge.schemas.errors import BY_CODE, ERRORS, Action, action_for, error_body, markdown_table
from edge.uplink.auth import TokenManager
from edge.uplink.client import PlatformClient

IDS = ["01A", "01B"]
RECORDS = [{"id": i} for i in IDS]


class _Tokens:
    async def token(self) -> str:
        return "t"

    def invalidate(self, token: str) -> None:
        pass


def _client(code: str, **extra: object) -> PlatformClient:
    status, body = error_body(code, **extra)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers={"Retry-After": "2"})

    http = httpx.AsyncClient(base_url="https://platform.test", transport=httpx.MockTransport(handler))
    return PlatformClient(http, _Tokens(), estate_id="E", gateway_id="G", use_gzip=False)  # type: ignore[arg-type]


def test_the_table_is_complete_and_consistent() -> None:
    assert len(BY_CODE) == len(ERRORS), "codes are unique"
    for e in ERRORS:
        assert e.code.isupper() and 400 <= e.status < 600 and e.meaning and e.suggestion
        assert action_for(e.status, e.code) is e.action
    assert action_for(502, "SOMETHING_NEW") is Action.RETRY  # an unknown code is judged by its status
    assert action_for(422, None) is Action.DEAD_LETTER and action_for(403, None) is Action.HOLD
    assert markdown_table().count("\n") == len(ERRORS) + 1


@pytest.mark.parametrize("code", [e.code for e in ERRORS if e.action is not Action.REFRESH_TOKEN])
async def test_each_code_maps_to_its_action(code: str) -> None:
    client = _client(code, errors=[{"id": "01A", "message": "bad"}])
    action = BY_CODE[code].action
    expected = {Action.RETRY: UplinkUnavailable, Action.DEAD_LETTER: UplinkRejected, Action.HOLD: UplinkError}[action]
    with pytest.raises(expected) as info:
        await client.send("telemetry", RECORDS)
    assert type(info.value) is expected and info.value.code == code
    if action is Action.RETRY:
        assert info.value.retry_after == 2.0  # type: ignore[attr-defined]
    if action is Action.DEAD_LETTER:
        assert info.value.record_errors == {"01A": "bad"}  # type: ignore[attr-defined]
    if action is Action.HOLD:
        assert info.value.suggestion == BY_CODE[code].suggestion
    assert client.error_codes.get(code) == 1  # (a 401 first counts UNAUTHORIZED and refreshes once)


def _tokens(status: int, body: object) -> TokenManager:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    http = httpx.AsyncClient(base_url="https://platform.test", transport=httpx.MockTransport(handler))
    return TokenManager(http, "/oauth/token", "gw", SecretStr("s3cret"))


async def test_token_refusal_in_rfc_6749_form() -> None:
    """A real OAuth2 server answers {"error", "error_description"} only: the gateway names it in our codes."""
    tokens = _tokens(401, {"error": "invalid_client", "error_description": "Client authentication failed",
                           "error_uri": "https://auth.example/errors#invalid_client"})
    with pytest.raises(UplinkError) as info:
        await tokens.token()
    assert info.value.code == "INVALID_CLIENT"
    assert "Client authentication failed" in str(info.value) and "s3cret" not in str(info.value)
    assert info.value.suggestion == "see https://auth.example/errors#invalid_client"
    tokens = _tokens(400, {"error": "unsupported_grant_type"})
    with pytest.raises(UplinkError) as info:
        await tokens.token()
    assert info.value.code == "UNSUPPORTED_GRANT" and "unsupported_grant_type" in str(info.value)


async def test_token_refusal_in_the_contracts_form() -> None:
    status, body = error_body("INVALID_CLIENT", "unknown client or wrong secret")
    assert body["error"] == "invalid_client" and body["error_description"] == "unknown client or wrong secret"
    with pytest.raises(UplinkError) as info:
        await _tokens(status, body).token()
    assert info.value.code == "INVALID_CLIENT" and info.value.suggestion == BY_CODE["INVALID_CLIENT"].suggestion
