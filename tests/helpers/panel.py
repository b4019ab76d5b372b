"""The panel under test: a small estate config, seeded alarms, cheap hashing, and a real server thread.

``PanelServer`` runs the panel the way the daemon does (``serve_panel`` on a real 127.0.0.1 socket,
with a real ``Store`` file), in a thread with its own event loop, so synchronous tests (Playwright,
schemathesis, httpx.Client) can talk to it; ``call`` runs a coroutine in that loop (to seed data or
read the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from argon2 import PasswordHasher

from edge.clock import Clock, SystemClock
from edge.config.panel import PanelConfig
from edge.ids import new_id
from edge.panel import PanelHooks, create_app, serve_panel
from edge.panel.passwords import Passwords
from edge.panel.roles import Role
from edge.records import AlarmRecord, AlarmState, Reading, Severity
from edge.store import Store
from tests.helpers.platform import free_port

T = TypeVar("T")

XSS_NAME = '<script>alert("xss-device")</script><img src=x onerror=alert(1)>泵房'
PASSWORD = "correct horse 42"

DEVICES: list[dict[str, Any]] = [
    {"id": "hyd-1", "name": "1栋消火栓压力", "bus": "syn", "category": "fire_pressure",
     "location": {"building": "1栋", "room": "消防泵房"},
     "thresholds": {"pressure": {"low": 0.07, "high": 1.2}}},
    {"id": "em-1", "name": "1栋公共照明电表", "bus": "syn", "category": "electricity", "sub_item": "public_lighting",
     "location": {"building": "1栋", "floor": "B1"}},
    {"id": "wm-2", "name": "2栋水表", "bus": "syn", "category": "water", "location": {"building": "2栋"}},
    {"id": "xss-1", "name": XSS_NAME, "bus": "syn", "category": "other", "location": {"building": "2栋"}},
]

CAMERAS: list[dict[str, Any]] = [
    {"id": "cam-1", "name": "1栋北侧消防通道", "location": {"building": "1栋"}, "host": "127.0.0.1",
     "zones": [{"id": "lane-north", "kind": "fire_lane", "name": "北侧通道", "dwell_s": 90,
                "polygon": [[10, 200], [300, 200], [300, 420], [10, 420]]}]},
]


def write_panel_estate(tmp: Path, *, devices: list[dict[str, Any]] | None = None,
                       cameras: list[dict[str, Any]] | None = None) -> tuple[Path, Path]:
    """(config path, secrets path) for a small estate, written as an installer would (with comments)."""
    doc = {
        "estate": {"id": "EST-PANEL", "name": "阳光花园", "gateway_id": "GW-PANEL", "timezone": "Asia/Shanghai"},
        "platform": {"url": "https://127.0.0.1:9", "client_id": "gateway",
                     "client_secret": "!secret platform_client_secret", "enabled": False},
        "store": {"path": str(tmp / "edge.db"), "evidence_dir": str(tmp / "evidence")},
        "panel": {"language": "zh"},
        "buses": [{"kind": "synthetic", "id": "syn"}],
        "devices": DEVICES if devices is None else devices,
        "cameras": CAMERAS if cameras is None else cameras,
    }
    text = "# estate config written by the panel tests\n" + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    text = text.replace("'!secret platform_client_secret'", "!secret platform_client_secret  # from secrets.yaml")
    config_path = tmp / "estate.yaml"
    config_path.write_text(text, encoding="utf-8")
    secrets_path = tmp / "secrets.yaml"
    secrets_path.write_text("platform_client_secret: s3cret-for-tests\n", encoding="utf-8")
    secrets_path.chmod(0o600)
    return config_path, secrets_path


def cheap_passwords() -> Passwords:
    """Argon2id with tiny parameters: same code path, milliseconds per hash (tests log in a lot)."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def panel_settings(**overrides: Any) -> PanelConfig:
    values: dict[str, Any] = {"login_attempts_per_minute": 1000, "rollup_flush_s": 3600}
    values.update(overrides)
    return PanelConfig(**values)


def alarm(alarm_id: str | None = None, *, code: str = "fire.hydrant_pressure_low", device_id: str | None = "hyd-1",
          severity: Severity = Severity.MAJOR, message: str = "消火栓压力低", ts: datetime | None = None,
          state: AlarmState = AlarmState.RAISED, note: str = "", actor: str = "system",
          evidence: bytes | None = None) -> AlarmRecord:
    return AlarmRecord(alarm_id=alarm_id or new_id(), code=code, state=state, ts=ts or datetime.now(UTC),
                       device_id=device_id, severity=severity, message=message, note=note, actor=actor,
                       data={"value": 0.05, "limit": 0.07}, evidence=evidence)


def readings(device_id: str, point: str, unit: str, values: list[float], *, start: datetime,
             step: timedelta) -> list[Reading]:
    return [Reading(device_id, point, v, unit, start + i * step) for i, v in enumerate(values)]


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@dataclass
class PanelServer:
    """A panel on a real socket, in its own thread and loop."""

    tmp: Path
    hooks: PanelHooks = field(default_factory=PanelHooks)
    settings: PanelConfig = field(default_factory=panel_settings)
    clock: Clock = field(default_factory=SystemClock)
    devices: list[dict[str, Any]] | None = None
    cameras: list[dict[str, Any]] | None = None
    tls: tuple[Path, Path] | None = None
    port: int = 0
    loop: asyncio.AbstractEventLoop | None = None
    store: Store | None = None
    app: Any = None
    _thread: threading.Thread | None = None
    _stop: asyncio.Event | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> PanelServer:
        self.config_path, self.secrets_path = write_panel_estate(self.tmp, devices=self.devices, cameras=self.cameras)
        self.port = free_port()
        self._thread = threading.Thread(target=self._run, name="panel-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"panel server did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with Store(self.tmp / "edge.db", evidence_dir=self.tmp / "evidence", maintenance_interval_s=0,
                         batch_max_delay_ms=2, clock=self.clock) as store:
            self.store = store
            self.app = create_app(store, self.config_path, self.secrets_path, hooks=self.hooks, clock=self.clock,
                                  settings=self.settings, passwords=cheap_passwords(), backlog_ttl_s=0)
            started = asyncio.Event()
            kwargs: dict[str, Any] = {}
            if self.tls:
                kwargs = {"tls_cert": self.tls[0], "tls_key": self.tls[1]}
            server = asyncio.create_task(serve_panel(self.app, "127.0.0.1", self.port, started=started, **kwargs))
            await started.wait()
            self._ready.set()
            await self._stop.wait()
            server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await server

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        assert self.loop is not None
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    @property
    def ctx(self) -> Any:
        return self.app.state.panel

    def add_user(self, username: str, role: Role, password: str = PASSWORD) -> None:
        self.call(self.ctx.users.create(username, password, role))

    def client(self, **kwargs: Any) -> httpx.Client:
        verify: Any = kwargs.pop("verify", True)
        return httpx.Client(base_url=self.url, timeout=30, trust_env=False, verify=verify, **kwargs)

    def login(self, client: httpx.Client, username: str, password: str = PASSWORD) -> str:
        """Log ``client`` in through the form; returns the session's CSRF token."""
        page = client.get("/login")
        response = client.post("/login", data={"username": username, "password": password,
                                               "csrf_token": csrf_from(page.text), "next": "/"})
        assert response.status_code == 303, response.text[:500]
        return str(client.get("/api/v1/me").json()["csrf_token"])
