"""A 2xx is an acknowledgement only when its body accounts for every record sent (issue 10 defect 1).

Runs the real ``PlatformClient`` over ``httpx.MockTransport``: each answer below is one a captive
portal, a proxy, a truncated reply or a buggy platform really gives. None may count as delivered.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from edge.errors import UplinkProtocolError, UplinkRejected, UplinkUnavailable
from edge.uplink.client import Ack, PlatformClient

IDS = ["01A", "01B", "01C"]
RECORDS = [{"id": i, "device_id": "D", "point": "p", "value": 1.0} for i in IDS]


class _Tokens:
    async def token(self) -> str:
        return "t"

    def invalidate(self, token: str) -> None:  # pragma: no cover - no 401 here
        pass


def _client(status: int, body: bytes | str, headers: dict[str, str] | None = None) -> tuple[PlatformClient, list[Any]]:
    seen: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["idempotency-key"])
        content = body.encode() if isinstance(body, str) else body
        return httpx.Response(status, content=content, headers=headers or {})

    http = httpx.AsyncClient(base_url="https://platform.test", transport=httpx.MockTransport(handler))
    return PlatformClient(http, _Tokens(), estate_id="E", gateway_id="G", use_gzip=False), seen  # type: ignore[arg-type]


NOT_AN_ACK = {
    "captive portal html": (200, "<!doctype html><html><body>login</body></html>"),
    "empty 200": (200, ""),
    "empty 204": (204, ""),
    "truncated json": (200, '{"accepted": 3, "dup'),
    "json array": (200, "[3, 0]"),
    "json string": (200, '"ok"'),
    "no counts": (200, '{"status": "ok"}'),
    "one short": (200, '{"accepted": 2, "duplicates": 0}'),
    "one too many": (200, '{"accepted": 3, "duplicates": 1}'),
    "negative": (200, '{"accepted": 4, "duplicates": -1}'),
    "string counts": (200, '{"accepted": "3", "duplicates": 0}'),
    "bool count": (200, '{"accepted": true, "duplicates": 2}'),
    "float count": (200, '{"accepted": 3.0, "duplicates": 0}'),
    "echo of other ids": (200, '{"ids": ["01A", "01B", "XXX"]}'),
    "echo too short": (200, '{"ids": ["01A", "01B"]}'),
    "rejects unnamed": (200, '{"accepted": 2, "duplicates": 0, "rejected": 1}'),
    "not utf-8": (200, b"\xff\xfe\x00garbage"),
}


@pytest.mark.parametrize("case", sorted(NOT_AN_ACK))
async def test_a_2xx_that_does_not_account_for_the_batch_is_a_protocol_error(case: str) -> None:
    status, body = NOT_AN_ACK[case]
    client, _ = _client(status, body)
    with pytest.raises(UplinkProtocolError) as info:
        await client.send("telemetry", RECORDS)
    # It is an UplinkUnavailable: the uplink resends it with backoff and feeds the breaker.
    assert isinstance(info.value, UplinkUnavailable)
    assert client.error_codes == {"BAD_ACK": 1}
    assert len(info.value.excerpt) <= 200


async def test_the_resend_carries_the_same_idempotency_key() -> None:
    client, seen = _client(200, "<html></html>")
    for _ in range(2):
        with pytest.raises(UplinkProtocolError):
            await client.send("telemetry", RECORDS)
    assert len(seen) == 2 and seen[0] == seen[1]


@pytest.mark.parametrize("body, expected", [
    ({"accepted": 3, "duplicates": 0}, Ack(3, 0)),
    ({"accepted": 1, "duplicates": 2}, Ack(1, 2)),
    ({"accepted": 0, "duplicates": 3, "rejected": 0}, Ack(0, 3)),
    ({"ids": ["01C", "01A", "01B"]}, Ack(3, 0)),
])
async def test_answers_that_account_for_every_record_are_acks(body: dict[str, Any], expected: Ack) -> None:
    client, _ = _client(200, json.dumps(body))
    assert await client.send("telemetry", RECORDS) == expected
    assert client.error_codes == {}


async def test_records_named_as_rejected_in_a_2xx_are_dead_letter_candidates() -> None:
    body = {"accepted": 2, "duplicates": 0, "rejected": 1, "errors": [{"id": "01B", "message": "unknown device"}]}
    client, _ = _client(200, json.dumps(body))
    with pytest.raises(UplinkRejected) as info:
        await client.send("telemetry", RECORDS)
    assert info.value.record_errors == {"01B": "unknown device"}
