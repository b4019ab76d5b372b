"""The overview page's figures: the estate by building, device states, open alarms, uplink, indicators.

Everything here is cheap except the uplink backlog (a count over each lane's pending range, which for
telemetry can be millions of rows), so a background task (``refresh_loop``, run by the app) recounts
it every ``backlog_ttl_s``; the rest is computed per request from indexes and memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from edge.clock import Clock, to_us
from edge.indicators.demo_clock import DEMO_DIMENSION, DEMO_RUNNING_HOUR
from edge.panel.devices import DeviceIndex, device_view
from edge.panel.hooks import PanelHooks
from edge.panel.live import LiveValues
from edge.store import LaneBacklog, Store
from edge.store.queries import StoredIndicator

log = logging.getLogger(__name__)

SEVERITIES: tuple[str, ...] = ("critical", "major", "warning", "info")


@dataclass(slots=True)
class BuildingSummary:
    name: str
    devices: int = 0
    online: int = 0
    offline: int = 0
    unknown: int = 0
    disabled: int = 0
    open_alarms: int = 0


@dataclass(frozen=True, slots=True)
class IndicatorView:
    code: str
    granularity: str
    period_start_us: int
    period_end_us: int
    value: float | None
    unit: str
    coverage: float
    samples: int
    demo: bool = False  # the demo clock's figure of the running hour so far (edge.indicators.demo_clock)


@dataclass(slots=True)
class Overview:
    buildings: list[BuildingSummary]
    states: dict[str, int]
    alarms_by_severity: dict[str, int]
    open_alarms: int
    backlog: list[LaneBacklog]
    dead_letters: int
    uplink: dict[str, Any] | None
    indicators: list[IndicatorView] = field(default_factory=list)


class OverviewService:
    def __init__(self, store: Store, live: LiveValues, hooks: PanelHooks, clock: Clock, *,
                 backlog_ttl_s: float = 5.0) -> None:
        self.store = store
        self.live = live
        self.hooks = hooks
        self.clock = clock
        self.backlog_ttl_s = backlog_ttl_s
        self._backlog: list[LaneBacklog] | None = None
        self._backlog_at = float("-inf")
        self._backlog_lock = asyncio.Lock()

    async def backlog(self) -> list[LaneBacklog]:
        """The cached backlog; refreshed here only when ``refresh_loop`` is not keeping it fresh."""
        if self._backlog is not None and self.clock.monotonic() - self._backlog_at < 2 * self.backlog_ttl_s:
            return self._backlog
        return await self.refresh_backlog()

    async def refresh_backlog(self) -> list[LaneBacklog]:
        async with self._backlog_lock:
            self._backlog = await self.store.backlog()
            self._backlog_at = self.clock.monotonic()
            return self._backlog

    async def refresh_loop(self) -> None:
        """Keep the backlog fresh in the background, so no page view pays for counting it.

        Counting takes tens of ms with hundreds of thousands of records pending.
        """
        while True:
            try:
                await self.refresh_backlog()
            except Exception:
                log.exception("panel: counting the uplink backlog failed")
            await asyncio.sleep(self.backlog_ttl_s)

    async def open_alarm_counts(self) -> tuple[dict[str, int], dict[str | None, int]]:
        """Open alarms by severity and by device, from one pass over the open alarms."""
        by_severity = dict.fromkeys(SEVERITIES, 0)
        by_device: dict[str | None, int] = {}
        for c in await self.store.alarms.open_counts():
            device_id, severity, count = c.device_id, c.severity, c.count
            by_severity[severity] = by_severity.get(severity, 0) + int(count)
            by_device[device_id] = by_device.get(device_id, 0) + int(count)
        return by_severity, by_device

    def uplink_status(self) -> dict[str, Any] | None:
        if self.hooks.uplink_status is None:
            return None
        try:
            return dict(self.hooks.uplink_status())
        except Exception:
            log.exception("uplink status hook failed")
            return None

    async def snapshot(self, index: DeviceIndex) -> Overview:
        now = to_us(self.clock.now())
        buildings = {name: BuildingSummary(name) for name in index.buildings}
        states = {"online": 0, "offline": 0, "unknown": 0, "disabled": 0}
        for device in index.devices:
            view = device_view(device, self.live, now)
            summary = buildings[device.location.building]
            summary.devices += 1
            setattr(summary, view.state, getattr(summary, view.state) + 1)
            states[view.state] += 1
        building_of = index.building_of
        by_severity, by_device = await self.open_alarm_counts()
        for device_id, count in by_device.items():
            name = building_of.get(device_id or "")
            if name is not None:
                buildings.setdefault(name, BuildingSummary(name)).open_alarms += count
        counters = await self.store.counters()
        return Overview(
            buildings=list(buildings.values()),
            states=states,
            alarms_by_severity=by_severity,
            open_alarms=sum(by_severity.values()),
            backlog=await self.backlog(),
            dead_letters=counters.get("uplink.dead_letters", 0),
            uplink=self.uplink_status(),
            indicators=await self.latest_indicators(),
        )

    async def latest_indicators(self) -> list[IndicatorView]:
        """The newest estate-wide figure of every indicator code (hour first, else day, else month).

        Distinct codes are found by skipping along the (code, granularity, period_start) index, one
        seek per code, rather than a GROUP BY over every indicator ever computed.
        """
        out: list[IndicatorView] = []
        for code in await self.store.records.indicator_codes():
            for granularity in ("hour", "day", "month"):
                rows = await self.store.records.newest_indicators(code, granularity, 50)
                view = _estate_wide(code, granularity, rows)
                if view is not None:
                    out.append(view)
                    break
        return out


def _estate_wide(code: str, granularity: str, rows: list[StoredIndicator]) -> IndicatorView | None:
    """The newest row of the newest period that has no dimensions (the estate-wide total).

    In a demo the running hour's demo-clock figure (dimensions only ``demo``) stands in until the
    hour's real record exists, marked as demo.
    """
    if not rows:
        return None
    newest = rows[0].period_start_us
    demo: IndicatorView | None = None
    for r in rows:
        if r.period_start_us != newest:
            break
        try:
            dims = json.loads(r.payload).get("dimensions") or {}
        except ValueError:
            dims = {}
        if not dims:
            return IndicatorView(code, granularity, r.period_start_us, r.period_end_us, r.value, r.unit, r.coverage,
                                 r.samples)
        if demo is None and dims == {DEMO_DIMENSION: DEMO_RUNNING_HOUR}:
            demo = IndicatorView(code, granularity, r.period_start_us, r.period_end_us, r.value, r.unit, r.coverage,
                                 r.samples, demo=True)
    return demo
