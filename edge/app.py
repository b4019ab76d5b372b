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
import dataclasses
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


@dataclass(frozen=True, slots=True)
class Runtime:
    """What a running gateway is made of, every part present: built once at start-up.

    A reload builds the next one from this one (new config, energy watch and, when the platform
    settings changed, uplink; the long-lived stages are reconfigured in place) and swaps it in with
    one assignment, only after everything it needs was built: a refused reload leaves this one.
    """

    config: EstateConfig
    store: Store
    alarms: AlarmManager
    normaliser: Normaliser
    rules: RuleEngine
    energy: EnergyWatch
    rule_chain: RuleChain
    pipeline: Pipeline
    clock_check: ClockCheck
    indicators: IndicatorEngine
    supervisor: Supervisor
    uplink: Uplink | None  # None: platform.enabled is false
    panel_url: str | None  # None: panel.enabled is false


@dataclass
class Gateway:
    """The daemon. ``runtime`` is ``None`` until start-up has built every part, then the one in force."""

    config_path: Path
    secrets_path: Path | None = None
    clock: Clock = field(default_factory=SystemClock)
    runtime: Runtime | None = None
    reloads: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    # Read-only views of the runtime in force (``None`` before start-up finished), for the panel's
    # hooks, the CLI and the tests.
    @property
    def config(self) -> EstateConfig | None:
        return self.runtime.config if self.runtime else None

    @property
    def store(self) -> Store | None:
        return self.runtime.store if self.runtime else None

    @property
    def pipeline(self) -> Pipeline | None:
        return self.runtime.pipeline if self.runtime else None

    @property
    def uplink(self) -> Uplink | None:
        return self.runtime.uplink if self.runtime else None

    @property
    def supervisor(self) -> Supervisor | None:
        return self.runtime.supervisor if self.runtime else None

    @property
    def alarms(self) -> AlarmManager | None:
        return self.runtime.alarms if self.runtime else None

    @property
    def rules(self) -> RuleEngine | None:
        return self.runtime.rules if self.runtime else None

    @property
    def energy(self) -> EnergyWatch | None:
        return self.runtime.energy if self.runtime else None

    @property
    def rule_chain(self) -> RuleChain | None:
        return self.runtime.rule_chain if self.runtime else None

    @property
    def panel_url(self) -> str | None:
        return self.runtime.panel_url if self.runtime else None

    def load(self) -> EstateConfig:
        config = load_config(self.config_path, self.secrets_path)
        for value in secret_values(config):
            register_secret(value)
        return config

    async def run(self, *, install_signals: bool = True) -> None:
        """Run until SIGTERM/SIGINT (or ``request_stop``)."""
        cfg = self.load()
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
            store = await stack.enter_async_context(Store.from_config(cfg.store, clock=self.clock))
            alarms = await stack.enter_async_context(AlarmManager.from_config(store, cfg, clock=self.clock))
            normaliser = Normaliser.from_config(cfg, counters=counter_specs(cfg))
            await stack.enter_async_context(CounterStates(store, normaliser))
            rules = RuleEngine.from_config(cfg, VISION_EVENT_ALARMS)
            await stack.enter_async_context(PendingTimers(store, rules))
            energy = EnergyWatch.from_config(cfg)
            chain = RuleChain(rules, energy)
            chain.restore(await store.open_alarms())
            pipeline = Pipeline(store, normaliser=normaliser, rules=chain, alarms=alarms)
            stack.push_async_callback(pipeline.drain)  # after the sources stop, before the store closes
            clock_check = await stack.enter_async_context(ClockCheck(store, self.clock))
            await sync_inventory(store, cfg, self.clock)  # the platform learns the devices before their data
            uplink = self._new_uplink(cfg, store, clock_check) if cfg.platform.enabled else None
            # Whatever uplink is current when the gateway stops (a reload may have replaced it) is
            # stopped here, before the clock check and the store close.
            stack.push_async_callback(self._stop_uplink, uplink)
            if uplink is not None:
                await uplink.start()
            indicators = await stack.enter_async_context(IndicatorEngine(store, cfg, clock=self.clock))
            # Month-to-date energy use (quotas) continues from the indicator series after a restart.
            await indicators.fold()
            await energy.restore_usage(store, self.clock.now())
            panel_url = None
            if cfg.panel.enabled:
                panel_url = await stack.enter_async_context(self._panel(cfg, store, alarms, pipeline))
            supervisor = await stack.enter_async_context(Supervisor(pipeline, clock=self.clock))
            await supervisor.reconcile(all_sources(cfg, self.clock, store))
            self.runtime = Runtime(cfg, store, alarms, normaliser, rules, energy, chain, pipeline, clock_check,
                                   indicators, supervisor, uplink, panel_url)
            log.info("gateway %s for estate %s (%s) running: %d source(s)", cfg.estate.gateway_id,
                     cfg.estate.id, cfg.estate.name, len(supervisor.sources))
            print(f"estate-edge running: estate {cfg.estate.id}, store {cfg.store.path}"
                  + (f", panel {panel_url}" if panel_url else ""), flush=True)
            notifier = Notifier.from_env()  # systemd Type=notify: no-op outside a unit
            notifier.send("READY=1", f"STATUS=running: {len(supervisor.sources)} source(s)")
            interval = watchdog_interval_s()
            pinger = asyncio.create_task(watchdog(notifier, store, interval), name="sd-watchdog") if interval else None
            await self._stop.wait()
            notifier.send("STOPPING=1")
            if pinger is not None:
                await cancel_and_wait(pinger)
            log.info("stopping: sources first, then flush the store")
            await supervisor.stop_all()
        stored = self.runtime.pipeline.readings_in if self.runtime else 0
        log.info("gateway stopped cleanly")
        print(f"estate-edge stopped cleanly: {stored} readings stored this run", flush=True)

    @contextlib.asynccontextmanager
    async def _panel(self, cfg: EstateConfig, store: Store, alarms: AlarmManager,
                     pipeline: Pipeline) -> AsyncIterator[str]:
        """Serve the panel while inside; yields its address."""
        from edge.panel.app import create_app
        from edge.panel.server import serve_panel
        from edge.panel_wiring import build_panel_hooks

        app = create_app(store, self.config_path, self.secrets_path, alarms=alarms,
                         hooks=build_panel_hooks(self), pipeline=pipeline, clock=self.clock, config=cfg)
        started = asyncio.Event()
        task = asyncio.create_task(serve_panel(app, cfg.panel.host, cfg.panel.port, tls_cert=cfg.panel.tls_cert,
                                               tls_key=cfg.panel.tls_key, started=started), name="panel")
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            task.result()  # raises PanelStartError with the reason
        scheme = "https" if cfg.panel.tls_cert else "http"
        try:
            yield f"{scheme}://{cfg.panel.host}:{cfg.panel.port}/"
        finally:
            await cancel_and_wait(task)

    def request_stop(self) -> None:
        self._stop.set()

    def _new_uplink(self, cfg: EstateConfig, store: Store, clock_check: ClockCheck) -> Uplink:
        """The one way an uplink is built, at start and on reload: with the clock check's Date hook."""
        return Uplink.from_config(store, cfg, clock=self.clock, on_date_header=clock_check.observe_date)

    async def _stop_uplink(self, started: Uplink | None) -> None:
        """At exit: stop the uplink in force then (a reload may have replaced ``started``)."""
        uplink = self.runtime.uplink if self.runtime is not None else started
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
        rt = self.runtime
        if rt is None:
            raise ConfigError("the gateway is still starting; reload once it runs")
        sources = all_sources(new, self.clock, rt.store)
        specs = specs_from_config(new, VISION_EVENT_ALARMS)
        energy = EnergyWatch.from_config(new)  # new quotas and night window
        await energy.restore_usage(rt.store, self.clock.now())
        energy.restore(await rt.store.open_alarms())  # a night-flow alarm raised before the reload still clears
        counters = counter_specs(new)
        uplink = None
        if new.platform != rt.config.platform and new.platform.enabled:
            uplink = self._new_uplink(new, rt.store, rt.clock_check)
        return _ReloadPlan(sources, specs, energy, counters, uplink)

    async def _apply_reload(self, new: EstateConfig, plan: _ReloadPlan) -> dict[str, list[str]]:
        old = self.runtime
        assert old is not None  # _prepare_reload refused otherwise
        restart_uplink = old.config.platform != new.platform
        # The swap: one assignment, after everything the new config needs was built.
        self.runtime = rt = dataclasses.replace(old, config=new, energy=plan.energy,
                                                uplink=plan.uplink if restart_uplink else old.uplink)
        messages.configure(new.estate.language, messages.labels_from_config(new))
        await sync_inventory(rt.store, new, self.clock)  # changed and removed devices: new versions
        self.reloads += 1
        changes = await rt.supervisor.reconcile(plan.sources)
        rt.normaliser.reconfigure(new, plan.counters)  # new valid ranges and counter specs
        rt.rules.reconfigure(plan.specs)
        rt.indicators.reconfigure(new)
        rt.rule_chain.engines = (rt.rules, rt.energy)
        for part in await rt.alarms.reconfigure(new):
            changes.setdefault("reconfigured", []).append(f"alarms.{part}")
        if old.config.store != new.store:
            log.warning("store settings changed; they take effect at the next restart")
        if old.config.panel != new.panel:
            log.warning("panel settings changed; they take effect at the next restart")
        if restart_uplink:
            if old.uplink is not None:
                await old.uplink.stop()
            if rt.uplink is not None:
                await rt.uplink.start()
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
