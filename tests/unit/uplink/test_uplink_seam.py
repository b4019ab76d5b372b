"""The uplink on its seams: the real ``Uplink`` and ``PlatformClient`` over ``httpx.MockTransport``, a real
SQLite store in a temporary folder, and the manual clock, so waits are checked to the instant.

Over real sockets a test can only say "the breaker opened at some point" or "nothing came within
0.3 s". Here the clock is moved by hand: a ``Retry-After: 30`` keeps every request away until
exactly 30 s have passed, five failures open the breaker and then not one request reaches the
platform for ``breaker_reset_s`` before the single half-open probe, and a success closes it and
drains the backlog with every record once. The platform is the one thing replaced (a handler
that answers as a platform does); store, leasing, acknowledgement and cursors are the real ones.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from edge.backoff import Backoff
from edge.clock import ManualClock
from edge.records import Reading
from edge.store import Store
from edge.uplink import Uplink
from edge.uplink.breaker import BreakerState
from edge.uplink.client import PlatformClient
from edge.uplink.uplink import UplinkSettings
from tests.helpers.virtual_time import settle
from tests.helpers.waiting import eventually

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


class _Tokens:
    async def token(self) -> str:
        return "t"

    def invalidate(self, token: str) -> None:  # pragma: no cover - the handler never answers 401
        pass


class Platform:
    """Answers ingest posts from a script of statuses; records the clock time of each request and the ids."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.script: list[tuple[int, dict[str, str]]] = []
        self.requests: list[float] = []
        self.ids: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(self.clock.monotonic())
        status, headers = self.script.pop(0) if self.script else (200, {})
        if status != 200:
            return httpx.Response(status, json={"code": str(status), "message": "unavailable"}, headers=headers)
        records = json.loads(request.content)["records"]
        self.ids.extend(r["id"] for r in records)
        return httpx.Response(200, json={"accepted": len(records), "duplicates": 0})


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[ManualClock, Platform, Store, Callable[[], Uplink]]]:
    clock = ManualClock(T0)
    platform = Platform(clock)
    http = httpx.AsyncClient(base_url="https://platform.test", transport=httpx.MockTransport(platform.handle))
    async with Store(tmp_path / "edge.db", clock=clock) as store:

        def make() -> Uplink:
            client = PlatformClient(http, _Tokens(), estate_id="E", gateway_id="G", use_gzip=False)  # type: ignore[arg-type]
            settings = UplinkSettings(batch_size=50, concurrency=1, backoff_initial_s=1.0, backoff_max_s=8.0,
                                      breaker_failures=5, breaker_reset_s=30.0)
            uplink = Uplink(store, client, settings, clock=clock, http=http)
            uplink.backoff = Backoff(1.0, 8.0, jitter="full", rng=random.Random(7))  # the same waits every run
            return uplink

        yield clock, platform, store, make


def readings(n: int) -> list[Reading]:
    return [Reading(f"m{i % 5}", "energy_import", float(i), "kWh", T0) for i in range(n)]


async def quiet_until(clock: ManualClock, platform: Platform, seconds: float) -> None:
    """Move the clock on in small steps, letting the uplink run at each; nothing may reach the platform."""
    before = len(platform.requests)
    end = clock.monotonic() + seconds
    while clock.monotonic() < end - 1e-9:
        clock.advance(min(0.25, end - clock.monotonic()))
        await settle()
        assert len(platform.requests) == before, f"a request at {platform.requests[-1]:.2f} s, before {end:.2f} s"


async def test_retry_after_holds_every_request_until_it_expires(rig) -> None:  # type: ignore[no-untyped-def]
    clock, platform, store, make = rig
    await store.append_readings(readings(20))
    platform.script = [(503, {"Retry-After": "30"})]
    async with make() as uplink:
        await eventually(lambda: len(platform.requests) == 1, what="the first post")
        await eventually(lambda: uplink.failures == 1, what="the 503 handled")
        await quiet_until(clock, platform, 29.75)  # Retry-After beats the 1 s backoff
        clock.advance(0.5)
        await eventually(lambda: len(platform.requests) == 2, what="the retry once Retry-After expired")
        await eventually(lambda: len(platform.ids) == 20, what="all 20 readings at the platform")
    assert 30.0 <= platform.requests[1] - platform.requests[0] <= 30.25 + 1e-9


async def test_breaker_opens_after_five_failures_then_one_probe_closes_it(rig) -> None:  # type: ignore[no-untyped-def]
    clock, platform, store, make = rig
    await store.append_readings(readings(120))
    platform.script = [(500, {})] * 5 + [(500, {})]  # five to open; the first half-open probe fails too
    async with make() as uplink:
        for n in range(1, 6):
            await eventually(lambda n=n: uplink.failures == n, what=f"failure {n}")  # type: ignore[misc]
            if n < 5:
                clock.advance(8.0)  # past any backoff step (capped at 8 s)
        assert uplink.breaker.state is BreakerState.OPEN
        opened = clock.monotonic()
        await quiet_until(clock, platform, 29.75)  # open: not one request
        clock.advance(0.5)
        await eventually(lambda: len(platform.requests) == 6, what="the half-open probe")
        await eventually(lambda: uplink.breaker.state is BreakerState.OPEN and uplink.failures == 6,
                         what="the failed probe re-opening the breaker")
        await quiet_until(clock, platform, 29.75)
        clock.advance(0.5)
        await eventually(lambda: len(platform.ids) == 120, what="the backlog drained after the probe succeeded")
        assert uplink.breaker.state is BreakerState.CLOSED
    assert platform.requests[5] - opened >= 30.0 - 1e-9
    assert sorted(platform.ids) == sorted(set(platform.ids))  # every record once
