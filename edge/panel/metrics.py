"""Prometheus metrics at ``/metrics``: the gateway's health as a monitoring system scrapes it.

Two kinds: counters the panel itself keeps (requests, logins) live in a per-app registry; the
estate's figures (device states, open alarms, uplink backlog, store counters, rollup health) are
read at scrape time from the same sources the overview page uses and exposed by a collector that
yields fresh families each scrape. A per-app registry (not prometheus_client's global one) lets
several panels run in one test process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge.panel.overview import Overview

PREFIX = "estate_edge"


class _Snapshot(Collector):
    """Yields the figures of the last ``Overview`` (set just before each scrape)."""

    def __init__(self) -> None:
        self.overview: Overview | None = None
        self.counters: dict[str, int] = {}
        self.extra: dict[str, float] = {}

    def collect(self) -> Iterator[Metric]:
        o = self.overview
        if o is None:
            return
        devices = GaugeMetricFamily(f"{PREFIX}_devices", "Configured devices by state.", labels=["state"])
        for state, count in o.states.items():
            devices.add_metric([state], count)
        yield devices
        alarms = GaugeMetricFamily(f"{PREFIX}_open_alarms", "Open alarms by severity.", labels=["severity"])
        for severity, count in o.alarms_by_severity.items():
            alarms.add_metric([severity], count)
        yield alarms
        pending = GaugeMetricFamily(f"{PREFIX}_uplink_pending_records", "Records not yet acknowledged by the "
                                    "platform, per lane.", labels=["lane"])
        oldest = GaugeMetricFamily(f"{PREFIX}_uplink_oldest_pending_seconds", "Age of the oldest record not yet "
                                   "acknowledged, per lane (0 when none).", labels=["lane"])
        for b in o.backlog:
            pending.add_metric([b.lane.value], b.pending)
            oldest.add_metric([b.lane.value], b.oldest_age_s or 0.0)
        yield pending
        yield oldest
        yield CounterMetricFamily(f"{PREFIX}_uplink_dead_letters", "Records the platform rejected as invalid.",
                                  value=o.dead_letters)
        if o.uplink is not None:
            breaker = GaugeMetricFamily(f"{PREFIX}_uplink_breaker_state", "1 for the circuit breaker's current "
                                        "state.", labels=["state"])
            current = str(o.uplink.get("breaker", ""))
            for state in ("closed", "open", "half_open"):
                breaker.add_metric([state], 1.0 if current == state else 0.0)
            yield breaker
        store = CounterMetricFamily(f"{PREFIX}_store_events", "Store counters (evictions, dead letters, ...).",
                                    labels=["name"])
        for name, value in sorted(self.counters.items()):
            store.add_metric([name], value)
        yield store
        for name, level in sorted(self.extra.items()):
            yield GaugeMetricFamily(f"{PREFIX}_{name}", name.replace("_", " ") + ".", value=level)


class PanelMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(f"{PREFIX}_panel_requests", "Panel HTTP requests.", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram(f"{PREFIX}_panel_request_seconds", "Panel request handling time.", ["route"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5), registry=self.registry)
        self.logins = Counter(f"{PREFIX}_panel_logins", "Login attempts by result.", ["result"],
                              registry=self.registry)
        self.snapshot = _Snapshot()
        self.registry.register(self.snapshot)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        if route.startswith("/static/"):
            route = "/static"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self, overview: Overview, counters: dict[str, int], extra: dict[str, Any]) -> bytes:
        self.snapshot.overview = overview
        self.snapshot.counters = counters
        self.snapshot.extra = {k: float(v) for k, v in extra.items()}
        return generate_latest(self.registry)
