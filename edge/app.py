"""The gateway daemon's lifecycle: wire the stages, run them, reload on SIGHUP, stop on SIGTERM.

    sources --Sink--> Pipeline: normalise -> Store -> rules -> alarms (notifiers)
                                            |
              indicators (hour/day/month) --+--> outbox lanes --> Uplink --> platform
                                            |
                                  panel (reads the store, acks / resolves alarms)

Each stage is an async context manager entered here in dependency order and left in reverse.
Shutdown order is the durability argument: stop the sources first (no new input), then the
indicator, clock and alarm tasks, then the uplink, and close the store last, after its writer
committed everything queued. Nothing a source was told "stored" can be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.registry import build_sources, counter_specs
from edge import messages
from edge.alarms import AlarmManager
from edge.cameras import build_camera_sources
from edge.clock import Clock, SystemClock
from edge.config import EstateConfig, load_config, secret_values
from edge.config.files_check import check_config
from edge.errors import ConfigError
from edge.indicators import IndicatorEngine
from edge.indicators.energy_watch import EnergyWatch, RuleChain
from edge.inventory import sync_inventory
from edge.logs import register_secret
from edge.normalise.normaliser import Normaliser
from edge.normalise.persistence import CounterStates
from edge.pipeline import Pipeline
from edge.rules import RuleEngine
from edge.rules.persistence import PendingTimers
from edge.rules.specs import RuleSpecs, specs_from_config
from edge.service import Notifier, watchdog, watchdog_interval_s
from edge.sources import CounterSpec, Source
from edge.store import Store
from edge.store.health import StoreHealthSource
from edge.supervisor import Supervisor
from edge.tasks import cancel_and_wait
from edge.timecheck import ClockCheck
from edge.uplink import Uplink
from edge.vision.alarms import VISION_EVENT_ALARMS

log = logging.getLogger(__name__)


def all_sources(config: EstateConfig, clock: Clock, store: Store | None = None) -> list[Source]:
    """Every acquisition task of an estate: one per bus, one per camera, and the store's own health."""
    health: list[Source] = [StoreHealthSource(store)] if store is not None else []
    return [*build_sources(config), *build_camera_sources(config, clock=clock), *health]


@dataclass(frozen=True, slots=True)
class _ReloadPlan:
    """What a reload swaps in, all of it built before anything running is touched."""

    sources: list[Source]
    specs: RuleSpecs
    energy: EnergyWatch
    counters: dict[tuple[str, str], CounterSpec]
    uplink: Uplink | None


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
    alarms: AlarmManager | None = None
    normaliser: Normaliser | None = None
    rules: RuleEngine | None = None
    indicators: IndicatorEngine | None = None
    energy: EnergyWatch | None = None
    rule_chain: RuleChain | None = None
    panel_url: str | None = None
    reloads: int = 0
    _clock_check: ClockCheck | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def load(self) -> EstateConfig:
        config = load_config(self.config_path, self.secrets_path)
        for value in secret_values(config):
            register_secret(value)
        return config

    async def run(self, *, install_signals: bool = True) -> None:
        """Run until SIGTERM/SIGINT (or ``request_stop``)."""
        self.config = cfg = self.load()
        messages.configure(cfg.estate.language, messages.labels_from_config(cfg))
        if cfg.platform.lab_mode_insecure:
            log.warning("platform.lab_mode_insecure is set: the platform link may run without HTTPS or without "
                        "certificate verification (url %s, verify_tls %s); never in an estate",
                        cfg.platform.url, cfg.platform.verify_tls)
        if install_signals:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, self.request_stop)
            loop.add_signal_handler(signal.SIGINT, self.request_stop)
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        async with contextlib.AsyncExitStack() as stack:
            self.store = store = await stack.enter_async_context(Store.from_config(cfg.store, clock=self.clock))
            self.alarms = await stack.enter_async_context(AlarmManager.from_config(store, cfg, clock=self.clock))
            self.normaliser = normaliser = Normaliser.from_config(cfg, counters=counter_specs(cfg))
            await stack.enter_async_context(CounterStates(store, normaliser))
            self.rules = RuleEngine.from_config(cfg, VISION_EVENT_ALARMS)
            await stack.enter_async_context(PendingTimers(store, self.rules))
            self.energy = EnergyWatch.from_config(cfg)
            self.rule_chain = chain = RuleChain(self.rules, self.energy)
            chain.restore(await store.open_alarms())
            self.pipeline = Pipeline(store, normaliser=normaliser, rules=chain, alarms=self.alarms)
            self._clock_check = await stack.enter_async_context(ClockCheck(store, self.clock))
            await sync_inventory(store, cfg, self.clock)  # the platform learns the devices before their data
            # Whatever uplink is current when the gateway stops (a reload may have replaced it) is
            # stopped here, before the clock check and the store close.
            stack.push_async_callback(self._stop_uplink)
            if cfg.platform.enabled:
                self.uplink = self._new_uplink(cfg)
                await self.uplink.start()
            self.indicators = await stack.enter_async_context(IndicatorEngine(store, cfg, clock=self.clock))
            # Month-to-date energy use (quotas) continues from the indicator series after a restart.
            await self.indicators.fold()
            await self.energy.restore_usage(store, self.clock.now())
            if cfg.panel.enabled:
                await stack.enter_async_context(self._panel(cfg))
            self.supervisor = await stack.enter_async_context(Supervisor(self.pipeline, clock=self.clock))
            await self.supervisor.reconcile(all_sources(cfg, self.clock, store))
            log.info("gateway %s for estate %s (%s) running: %d source(s)", cfg.estate.gateway_id,
                     cfg.estate.id, cfg.estate.name, len(self.supervisor.sources))
            print(f"estate-edge running: estate {cfg.estate.id}, store {cfg.store.path}"
                  + (f", panel {self.panel_url}" if self.panel_url else ""), flush=True)
            notifier = Notifier.from_env()  # systemd Type=notify: no-op outside a unit
            notifier.send("READY=1", f"STATUS=running: {len(self.supervisor.sources)} source(s)")
            interval = watchdog_interval_s()
            pinger = asyncio.create_task(watchdog(notifier, store, interval), name="sd-watchdog") if interval else None
            await self._stop.wait()
            notifier.send("STOPPING=1")
            if pinger is not None:
                await cancel_and_wait(pinger)
            log.info("stopping: sources first, then flush the store")
            await self.supervisor.stop_all()
        stored = self.pipeline.readings_in if self.pipeline else 0
        log.info("gateway stopped cleanly")
        print(f"estate-edge stopped cleanly: {stored} readings stored this run", flush=True)

    @contextlib.asynccontextmanager
    async def _panel(self, cfg: EstateConfig) -> AsyncIterator[None]:
        from edge.panel.app import create_app
        from edge.panel.server import serve_panel
        from edge.panel_wiring import build_panel_hooks

        assert self.store is not None
        app = create_app(self.store, self.config_path, self.secrets_path, alarms=self.alarms,
                         hooks=build_panel_hooks(self), pipeline=self.pipeline, clock=self.clock, config=cfg)
        started = asyncio.Event()
        task = asyncio.create_task(serve_panel(app, cfg.panel.host, cfg.panel.port, tls_cert=cfg.panel.tls_cert,
                                               tls_key=cfg.panel.tls_key, started=started), name="panel")
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            task.result()  # raises PanelStartError with the reason
        scheme = "https" if cfg.panel.tls_cert else "http"
        self.panel_url = f"{scheme}://{cfg.panel.host}:{cfg.panel.port}/"
        try:
            yield
        finally:
            await cancel_and_wait(task)

    def request_stop(self) -> None:
        self._stop.set()

    def _new_uplink(self, cfg: EstateConfig) -> Uplink:
        """The one way an uplink is built, at start and on reload: with the clock check's Date hook."""
        assert self.store is not None
        hook = self._clock_check.observe_date if self._clock_check is not None else None
        return Uplink.from_config(self.store, cfg, clock=self.clock, on_date_header=hook)

    async def _stop_uplink(self) -> None:
        uplink, self.uplink = self.uplink, None
        if uplink is not None:
            await uplink.stop()

    async def reload(self) -> dict[str, list[str]] | None:
        """SIGHUP: re-read the config; restart only what changed. A bad config keeps the old one running.

        Two phases, so that "refused" really means nothing changed: first everything the new config
        needs is validated and built (sources, rule specs, the energy watch with its usage and open
        alarms, a new uplink), touching nothing that runs; only then is it swapped in.
        """
        async with self._reload_lock:
            try:
                new = self._checked_config()
                plan = await self._prepare_reload(new)
            except Exception as exc:
                problems = exc.problems if isinstance(exc, ConfigError) and exc.problems else [str(exc)]
                log.error("reload refused, keeping the running config:\n  %s", "\n  ".join(problems))
                return None
            return await self._apply_reload(new, plan)

    def _checked_config(self) -> EstateConfig:
        """The config as ``estate-edge check`` sees it: schema, references and every referenced file."""
        report = check_config(self.config_path, self.secrets_path)
        if not report.ok or report.config is None:
            raise ConfigError(f"{self.config_path}: {len(report.errors)} problem(s)", report.errors)
        for value in secret_values(report.config):
            register_secret(value)
        return report.config

    async def _prepare_reload(self, new: EstateConfig) -> _ReloadPlan:
        """Build everything a reload swaps in; raises (and leaves nothing running) if any of it fails."""
        assert self.store is not None and self.config is not None
        sources = all_sources(new, self.clock, self.store)
        specs = specs_from_config(new, VISION_EVENT_ALARMS)
        energy = EnergyWatch.from_config(new)  # new quotas and night window
        await energy.restore_usage(self.store, self.clock.now())
        energy.restore(await self.store.open_alarms())  # a night-flow alarm raised before the reload still clears
        counters = counter_specs(new)
        uplink = None
        if new.platform != self.config.platform and new.platform.enabled:
            uplink = self._new_uplink(new)
        return _ReloadPlan(sources, specs, energy, counters, uplink)

    async def _apply_reload(self, new: EstateConfig, plan: _ReloadPlan) -> dict[str, list[str]]:
        assert self.supervisor is not None and self.config is not None
        old, self.config = self.config, new
        messages.configure(new.estate.language, messages.labels_from_config(new))
        if self.store is not None:
            await sync_inventory(self.store, new, self.clock)  # changed and removed devices: new versions
        self.reloads += 1
        changes = await self.supervisor.reconcile(plan.sources)
        if self.normaliser is not None:
            self.normaliser.reconfigure(new, plan.counters)  # new valid ranges and counter specs
        if self.rules is not None:
            self.rules.reconfigure(plan.specs)
        if self.indicators is not None:
            self.indicators.reconfigure(new)
        if self.rule_chain is not None:
            self.energy = plan.energy
            self.rule_chain.engines = (self.rules, self.energy)
        if self.alarms is not None:
            for part in await self.alarms.reconfigure(new):
                changes.setdefault("reconfigured", []).append(f"alarms.{part}")
        if old.store != new.store:
            log.warning("store settings changed; they take effect at the next restart")
        if old.panel != new.panel:
            log.warning("panel settings changed; they take effect at the next restart")
        if old.platform != new.platform:
            await self._stop_uplink()
            if plan.uplink is not None:
                self.uplink = plan.uplink
                await self.uplink.start()
            changes.setdefault("restarted", []).append("uplink")
        log.info("config reloaded: %s", {k: v for k, v in changes.items() if v and k != "unchanged"})
        print(f"estate-edge reloaded: {changes}", flush=True)
        return changes

    def status(self) -> dict[str, Any]:
        sup = self.supervisor
        return {
            "sources": {n: {"state": s.state, "restarts": s.restarts, "last_error": s.last_error}
                        for n, s in (sup.sources.items() if sup else [])},
            "uplink": self.uplink.status() if self.uplink else None,
        }
