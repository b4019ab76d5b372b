"""Latest values and chart rollups: aggregation, delta merging across flushes, restart, pruning, bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.clock import ManualClock, to_us
from edge.panel.live import LiveValues
from edge.panel.schema import PANEL_COMPONENT, PANEL_MIGRATIONS
from edge.pipeline import Pipeline
from edge.records import DeviceStatus, Quality, Reading
from edge.store import Store
from tests.helpers.sql import migrate, sql_rows, sql_write

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with Store(tmp_path / "edge.db", maintenance_interval_s=0, batch_max_delay_ms=1) as s:
        await migrate(s, PANEL_COMPONENT, PANEL_MIGRATIONS)
        yield s


def r(value: float, minutes: float, *, point: str = "pressure", device: str = "hyd-1",
      quality: Quality = Quality.GOOD) -> Reading:
    return Reading(device, point, value, "MPa", T0 + timedelta(minutes=minutes), quality)


async def test_buckets_aggregate_and_merge_across_flushes(store: Store) -> None:
    live = LiveValues(store, ManualClock(T0))
    await live.on_readings([r(0.30, 0), r(0.10, 1), r(0.50, 2)])
    await live.flush()
    await live.on_readings([r(0.20, 3), r(0.90, 7)])  # 0.20 joins the first 5-minute bucket; 0.90 starts the next
    await live.flush()
    rows = await sql_rows(store, "SELECT bucket_us, vmin, vmax, vsum, n, vlast FROM panel_rollup_5m ORDER BY bucket_us")
    assert rows[0] == (to_us(T0), 0.10, 0.50, pytest.approx(1.10), 4, 0.20)
    assert rows[1] == (to_us(T0 + timedelta(minutes=5)), 0.90, 0.90, 0.90, 1, 0.90)
    hourly = await sql_rows(store, "SELECT vmin, vmax, n, vlast FROM panel_rollup_1h")
    assert hourly == [(0.10, 0.90, 5, 0.90)]
    latest = await sql_rows(store, "SELECT value, ts_us FROM panel_latest")
    assert latest == [(0.90, to_us(T0 + timedelta(minutes=7)))]


async def test_series_includes_what_is_not_flushed_yet(store: Store) -> None:
    live = LiveValues(store, ManualClock(T0))
    await live.on_readings([r(1.0, 0)])
    await live.flush()
    await live.on_readings([r(3.0, 1), r(5.0, 12)])
    series = await live.series("hyd-1", "pressure", "5m", to_us(T0 - timedelta(hours=1)))
    assert [(b.n, b.vmin, b.vmax, b.avg) for b in series] == [(2, 1.0, 3.0, 2.0), (1, 5.0, 5.0, 5.0)]
    assert await live.series("hyd-1", "pressure", "5m", to_us(T0 + timedelta(minutes=10))) == series[1:]
    assert await live.series("hyd-1", "other", "5m", 0) == []


async def test_bad_quality_shows_as_latest_but_stays_out_of_charts(store: Store) -> None:
    live = LiveValues(store, ManualClock(T0))
    await live.on_readings([r(0.3, 0), r(0.0, 1, quality=Quality.BAD), r(float("nan"), 2)])
    latest = live.latest("hyd-1")["pressure"]
    assert latest.value == 0.0 and latest.quality is Quality.BAD
    series = await live.series("hyd-1", "pressure", "1h", 0)
    assert [(b.n, b.vmin) for b in series] == [(1, 0.3)]


async def test_older_reading_does_not_replace_the_latest(store: Store) -> None:
    live = LiveValues(store, ManualClock(T0))
    await live.on_readings([r(0.5, 10)])
    await live.on_readings([r(0.1, 5)])  # late delivery
    assert live.latest("hyd-1")["pressure"].value == 0.5
    assert live.last_seen_us("hyd-1") == to_us(T0 + timedelta(minutes=10))


async def test_restart_restores_latest_values_and_status(store: Store) -> None:
    live = LiveValues(store, ManualClock(T0))
    await live.on_readings([r(0.4, 0), r(12.5, 0, point="flow", device="wm-2")])
    await live.on_status(DeviceStatus("wm-2", False, T0 + timedelta(minutes=1), "timeout"))
    await live.flush()
    again = LiveValues(store, ManualClock(T0))
    await again.on_readings([r(0.6, 30)])  # arrived before load(): must not be overwritten by older stored data
    await again.load()
    assert again.latest("hyd-1")["pressure"].value == 0.6
    assert again.latest("wm-2")["flow"].value == 12.5
    status = again.status("wm-2")
    assert status is not None and not status.online and status.error == "timeout"


async def test_status_since_only_moves_on_a_change(store: Store) -> None:
    live = LiveValues(store, ManualClock(T0))
    await live.on_status(DeviceStatus("d", True, T0))
    await live.on_status(DeviceStatus("d", True, T0 + timedelta(minutes=5)))
    assert live.status("d").since_us == to_us(T0)  # type: ignore[union-attr]
    await live.on_status(DeviceStatus("d", False, T0 + timedelta(minutes=6)))
    assert live.status("d").since_us == to_us(T0 + timedelta(minutes=6))  # type: ignore[union-attr]
    await live.on_status(DeviceStatus("d", True, T0 + timedelta(minutes=2)))  # stale report ignored
    assert live.status("d").online is False  # type: ignore[union-attr]


async def test_prune_keeps_rollups_bounded(store: Store) -> None:
    clock = ManualClock(T0)
    live = LiveValues(store, clock)
    await live.on_readings([r(1.0, 0), r(2.0, 60 * 30)])  # now and 30 h later
    await live.flush()
    clock.advance(30 * 3600 + 60)
    await live.prune()
    assert await sql_rows(store, "SELECT count(*) FROM panel_rollup_5m") == [(1,)]  # older than 26 h: gone
    assert await sql_rows(store, "SELECT count(*) FROM panel_rollup_1h") == [(2,)]  # 8 days kept


async def test_failed_flush_keeps_the_deltas_for_the_next_one(store: Store, tmp_path: Path) -> None:
    live = LiveValues(store, ManualClock(T0))
    await live.on_readings([r(1.0, 0)])
    await sql_write(store, "ALTER TABLE panel_rollup_1h RENAME TO broken")
    with pytest.raises(Exception, match="panel_rollup_1h"):
        await live.flush()
    await sql_write(store, "ALTER TABLE broken RENAME TO panel_rollup_1h")
    await live.on_readings([r(3.0, 1)])
    await live.flush()
    assert await sql_rows(store, "SELECT n, vsum FROM panel_rollup_1h") == [(2, 4.0)]


async def test_pipeline_observer_feeds_live_values(store: Store) -> None:
    pipeline = Pipeline(store)
    live = LiveValues(store, ManualClock(T0))
    pipeline.observe_readings(live.on_readings)
    pipeline.observe_status(live.on_status)
    await pipeline.readings([r(0.33, 0)])
    await pipeline.device_status(DeviceStatus("hyd-1", True, T0))
    assert live.latest("hyd-1")["pressure"].value == 0.33
    assert live.status("hyd-1").online  # type: ignore[union-attr]
    assert await store.count("readings") == 1


async def test_pending_is_bounded_when_flushes_keep_failing(store: Store) -> None:
    live = LiveValues(store, ManualClock(T0), max_pending=10)
    await sql_write(store, "ALTER TABLE panel_rollup_1h RENAME TO broken")
    for minute in range(0, 200, 5):
        await live.on_readings([r(1.0, minute)])
        with pytest.raises(Exception, match="panel_rollup_1h"):
            await live.flush()
    assert live._pending_count <= 10
    assert live.dropped_buckets > 0
