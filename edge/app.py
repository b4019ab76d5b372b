"""The gateway daemon's lifecycle: wire the stages, run them, reload on SIGHUP, stop on SIGTERM.

    sources --Sink--> Pipeline --> Store --> Uplink --> platform
                         |           ^
                         v           |
                   rules -> alarms --+        panel reads the store

Shutdown order is the durability argument: stop the sources first (no new input), then let the
store's writer commit everything queued, then stop the uplink and close the store. Nothing that a
source was told "stored" can be lost, and nothing half-written is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.registry import build_sources
from edge.clock import Clock, SystemClock
from edge.config import EstateConfig, load_config, secret_values
from edge.errors import ConfigError
from edge.logs import register_secret
from edge.pipeline import Pipeline
from edge.store import Store
from edge.supervisor import Supervisor
from edge.uplink import Uplink

log = logging.getLogger(__name__)


@dataclass
class Gateway:
    config_path: Path
    secrets_path: Path | None = None
    clock: Clock = field(default_factory=SystemClock)
    config: EstateConfig | None = None
    store: Store | None = None
    pipeline: Pipeline | None = None
    uplink: Uplink | None = None
    supervisor: Supervisor | None = None
    reloads: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _extras: list[Any] = field(default_factory=list)

    def load(self) -> EstateConfig:
        config = load_config(self.config_path, self.secrets_path)
        for value in secret_values(config):
            register_secret(value)
        return config

    async def run(self, *, install_signals: bool = True) -> None:
        """Run until SIGTERM/SIGINT (or ``request_stop``)."""
        self.config = self.load()
        loop = asyncio.get_running_loop()
        if install_signals:
            loop.add_signal_handler(signal.SIGTERM, self.request_stop)
            loop.add_signal_handler(signal.SIGINT, self.request_stop)
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        cfg = self.config
        async with Store.from_config(cfg.store, clock=self.clock) as store:
            self.store = store
            self.pipeline = self._build_pipeline(cfg, store)
            uplink_cm: Any = contextlib.nullcontext()
            if cfg.platform.enabled:
                self.uplink = Uplink.from_config(store, cfg, clock=self.clock)
                uplink_cm = self.uplink
            async with uplink_cm:
                self.supervisor = Supervisor(self.pipeline, clock=self.clock)
                try:
                    await self.supervisor.reconcile(build_sources(cfg))
                    log.info("gateway %s for estate %s (%s) running: %d source(s)", cfg.estate.gateway_id,
                             cfg.estate.id, cfg.estate.name, len(self.supervisor.sources))
                    print(f"estate-edge running: estate {cfg.estate.id}, store {cfg.store.path}", flush=True)
                    await self._stop.wait()
                    log.info("stopping: sources first, then flush the store")
                finally:
                    await self.supervisor.stop_all()
                    for extra in reversed(self._extras):
                        with contextlib.suppress(Exception):
                            await extra.__aexit__(None, None, None)
        stored = self.pipeline.readings_in if self.pipeline else 0
        log.info("gateway stopped cleanly")
        print(f"estate-edge stopped cleanly: {stored} readings stored this run", flush=True)

    def _build_pipeline(self, cfg: EstateConfig, store: Store) -> Pipeline:
        return Pipeline(store)

    def request_stop(self) -> None:
        self._stop.set()

    async def reload(self) -> dict[str, list[str]] | None:
        """SIGHUP: re-read the config; restart only what changed. A bad config keeps the old one running."""
        async with self._reload_lock:
            try:
                new = self.load()
            except ConfigError as exc:
                log.error("reload refused, keeping the running config:\n  %s", "\n  ".join(exc.problems))
                return None
            old = self.config
            self.config = new
            self.reloads += 1
            assert self.supervisor is not None
            changes = await self.supervisor.reconcile(build_sources(new))
            if old is not None and old.store != new.store:
                log.warning("store settings changed; they take effect at the next restart")
            if old is not None and old.platform != new.platform and self.uplink is not None and self.store:
                await self.uplink.stop()
                self.uplink = Uplink.from_config(self.store, new, clock=self.clock)
                await self.uplink.start()
                changes.setdefault("restarted", []).append("uplink")
            log.info("config reloaded: %s", {k: v for k, v in changes.items() if v and k != "unchanged"})
            print(f"estate-edge reloaded: {changes}", flush=True)
            return changes
