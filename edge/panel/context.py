"""Everything a request handler needs, built once per app by ``create_app`` (``app.state.panel``)."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates

from edge.bus_tools import BrowseResult, ClientCertificate, ListenResult
from edge.clock import Clock
from edge.config import EstateConfig
from edge.config.panel import PanelConfig
from edge.panel.alarm_actions import CheckedAlarmActions
from edge.panel.audit import AuditLog
from edge.panel.config_files import ConfigFiles
from edge.panel.devices import DeviceIndex
from edge.panel.hooks import DiscoveredDevice, PanelHooks
from edge.panel.live import LiveValues
from edge.panel.metrics import PanelMetrics
from edge.panel.overview import OverviewService
from edge.panel.ratelimit import LoginRateLimiter
from edge.panel.sessions import SessionStore
from edge.panel.setup_token import SetupToken
from edge.panel.throttle import LoginThrottle
from edge.panel.users import UserStore
from edge.probes import DeviceProbe
from edge.store import Store

log = logging.getLogger(__name__)


class ConfigHolder:
    """The config the panel shows: the newest version of the file that validated.

    The file is re-read when its modification time or size changes (a stat per request, parsing
    only on change, in a worker thread). If the file on disk does not validate, the last good
    config stays in use and ``problems`` says why, so the pages can warn the installer.
    """

    def __init__(self, files: ConfigFiles, initial: EstateConfig | None) -> None:
        self.files = files
        self.config = initial
        self.index = DeviceIndex(initial)
        self.problems: list[str] = []
        self._stamp = self._stat()
        self._lock = asyncio.Lock()

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.files.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def set(self, config: EstateConfig) -> None:
        self.config = config
        self.index = DeviceIndex(config)
        self.problems = []
        self._stamp = self._stat()

    async def refresh(self) -> None:
        stamp = self._stat()
        if stamp == self._stamp:
            return
        async with self._lock:
            if stamp == self._stamp:
                return
            _text, result = await asyncio.to_thread(self.files.check_current)
            self._stamp = stamp
            if result.ok and result.config is not None:
                self.set(result.config)
                self._stamp = stamp
                log.info("panel: config file changed; now showing the new version")
            else:
                self.problems = [f"{line}: {msg}" if line else msg for line, msg in result.problems]
                log.warning("panel: config file changed but does not validate; showing the last good one")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.config.estate.timezone if self.config else "Asia/Shanghai")


@dataclass
class ToolResults:
    """The last test-device and discovery results, shown on the tools page until the next run."""

    probe: DeviceProbe | None = None
    discovered: list[DiscoveredDevice] | None = None
    discovered_at_us: int | None = None
    listened: ListenResult | None = None  # the last MQTT listen
    browsed: BrowseResult | None = None  # the last OPC-UA browse
    certificate: ClientCertificate | None = None  # the last OPC-UA client certificate shown


@dataclass
class PanelContext:
    store: Store
    clock: Clock
    settings: PanelConfig
    files: ConfigFiles
    config: ConfigHolder
    users: UserStore
    sessions: SessionStore
    audit: AuditLog
    limiter: LoginRateLimiter
    throttle: LoginThrottle
    setup: SetupToken
    live: LiveValues
    alarms: CheckedAlarmActions
    hooks: PanelHooks
    overview: OverviewService
    metrics: PanelMetrics
    templates: Jinja2Templates
    secret: bytes
    base_url: str
    static_dir: Path
    tools: ToolResults = field(default_factory=ToolResults)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
