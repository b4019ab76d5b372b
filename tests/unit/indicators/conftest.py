"""Indicator test rig: a small estate config, the real store, normaliser and pipeline on a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.clock import ManualClock
from edge.config import EstateConfig
from edge.indicators import IndicatorEngine
from edge.normalise.normaliser import Normaliser
from edge.pipeline import Pipeline
from edge.records import IndicatorRecord, Quality, Reading
from edge.store import Store
from tests.helpers.sql import sql_rows

# 2025-03-01 08:00 in Asia/Shanghai
T0 = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)


def estate(devices: Sequence[dict[str, Any]], **extra: Any) -> EstateConfig:
    doc: dict[str, Any] = {
        "estate": {"id": "EST-T", "name": "测试花园", "gateway_id": "GW-T", "timezone": "Asia/Shanghai"},
        "platform": {"url": "https://127.0.0.1:9", "client_id": "gw"},
        "buses": [{"kind": "synthetic", "id": "bus"}],
        "devices": [{"bus": "bus", "location": {"building": "1栋"}, **d} for d in devices],
        **extra,
    }
    return EstateConfig.model_validate(doc)


METERS = [
    {"id": "EM-1", "name": "电梯电表", "category": "electricity", "sub_item": "lifts", "poll_interval_s": 60},
    {"id": "EM-2", "name": "照明电表", "category": "electricity", "sub_item": "public_lighting", "poll_interval_s": 60},
    {"id": "WM-1", "name": "总水表", "category": "water", "poll_interval_s": 60},
    {"id": "HP-1", "name": "消火栓压力", "category": "fire_pressure", "poll_interval_s": 60},
    {"id": "LV-1", "name": "消防水池液位", "category": "fire_level", "poll_interval_s": 60,
     "thresholds": {"level": {"low": 2.0, "high": 5.0}}},
    {"id": "ENV-1", "name": "环境监测", "category": "environment", "poll_interval_s": 60},
]


@dataclass
class Rig:
    config: EstateConfig
    clock: ManualClock
    store: Store
    pipeline: Pipeline
    engine: IndicatorEngine
    path: Path

    async def feed(self, readings: Sequence[Reading]) -> None:
        await self.pipeline.readings(readings)

    async def restart(self) -> None:
        """Close everything and open it again on the same file (a gateway restart)."""
        await self.store.close()
        self.store = Store(self.path, clock=self.clock, batch_max_delay_ms=1)
        await self.store.open()
        self.pipeline = Pipeline(self.store, normaliser=self.pipeline.normaliser)
        self.engine = IndicatorEngine(self.store, self.config, clock=self.clock)

    async def records(self, code: str | None = None, granularity: str | None = None) -> list[dict[str, Any]]:
        import json

        rows = await sql_rows(self.store, "SELECT payload FROM indicators ORDER BY id")
        out = [json.loads(r[0]) for r in rows]
        return [r for r in out if (code is None or r["code"] == code)
                and (granularity is None or r["granularity"] == granularity)]

    async def latest(self, code: str, granularity: str, start: datetime,
                     dims: dict[str, str] | None = None) -> dict[str, Any]:
        """The highest version of one record (what the platform keeps)."""
        from edge.clock import to_us
        from edge.store.codec import iso

        wanted = iso(to_us(start))
        found = [r for r in await self.records(code, granularity)
                 if r["period_start"] == wanted and r["dimensions"] == (dims or {})]
        assert found, f"no {granularity} record {code} {dims or {}} for {wanted}"
        return max(found, key=lambda r: r["version"])


@pytest.fixture
async def make_rig(tmp_path: Path) -> AsyncIterator[Any]:
    rigs: list[Rig] = []

    async def build(devices: Sequence[dict[str, Any]] = METERS, start: datetime = T0, **extra: Any) -> Rig:
        config = estate(devices, **extra)
        clock = ManualClock(start)
        path = tmp_path / f"edge-{len(rigs)}.db"
        store = Store(path, clock=clock, batch_max_delay_ms=1)
        await store.open()
        pipeline = Pipeline(store, normaliser=Normaliser.from_config(config))
        engine = IndicatorEngine(store, config, clock=clock)
        rig = Rig(config, clock, store, pipeline, engine, path)
        rigs.append(rig)
        return rig

    yield build
    for rig in rigs:
        await rig.store.close()


def minutes(start: datetime, count: int, step_s: float = 60.0) -> list[datetime]:
    return [start + timedelta(seconds=i * step_s) for i in range(count)]


def reading(device: str, point: str, value: float, unit: str, ts: datetime,
            quality: Quality = Quality.GOOD) -> Reading:
    return Reading(device, point, value, unit, ts, quality)


def by_dims(records: Sequence[IndicatorRecord | dict[str, Any]]) -> dict[tuple, Any]:
    out = {}
    for r in records:
        if isinstance(r, dict):
            out[(r["code"], tuple(sorted(r["dimensions"].items())))] = r["value"]
        else:
            out[(r.code, tuple(sorted(r.dimensions.items())))] = r.value
    return out
