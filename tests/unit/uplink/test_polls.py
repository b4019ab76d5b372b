"""Telemetry is stored one row per device poll, its points in upload form, and goes up as stored."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from edge.records import Lane, Quality, Reading
from edge.store import Store, codec, schema
from edge.store.codec import MAX_POINTS, poll_rows, telemetry_payload
from edge.store.schema import MIGRATIONS

T = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
T_US = 1_795_766_400_000_000  # T in microseconds


def _ids(n: int) -> list[str]:
    return [f"{i:026d}" for i in range(n)]


def _poll(device: str, ts: datetime, points: int, unit: str = "V") -> list[Reading]:
    return [Reading(device, f"tag{p:02d}", float(p), unit, ts) for p in range(points)]


def test_one_row_per_poll_with_each_point_its_own() -> None:
    t1 = datetime(2026, 11, 27, 8, 0, 1, tzinfo=UTC)
    readings = _poll("EM-1", T, 30) + _poll("EM-2", T, 30, "m³/h") + _poll("EM-1", t1, 30)
    readings[31] = readings[31]._replace(value=float("inf"), quality=Quality.BAD)
    rows, shapes = poll_rows(readings, _ids, {})
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (f"{0:026d}", "EM-1", T_US, 30), (f"{1:026d}", "EM-2", T_US, 30), (f"{2:026d}", "EM-1", T_US + 1_000_000, 30)]
    assert rows[0][4] == rows[2][4] != rows[1][4] and len(shapes) == 2  # one shape per distinct (point, unit) list
    record = codec.plain(telemetry_payload((rows[1][0], rows[1][1], rows[1][2], rows[1][5])))
    assert record["points"][1] == {"point": "tag01", "value": None, "unit": "m3/h", "quality": "bad"}
    assert record["ts"] == "2026-11-27T08:00:00.000Z" and set(record) == {"id", "device_id", "ts", "points"}
    names = dict(shapes)[rows[1][4]]
    assert orjson.loads(names)[1] == ["tag01", "m³/h"]  # the shape keeps the canonical unit


def test_the_stored_points_are_spliced_into_the_request_unparsed() -> None:
    rows, _ = poll_rows(_poll("EM-1", T, 3), _ids, {})
    record = telemetry_payload((rows[0][0], rows[0][1], rows[0][2], rows[0][5]))
    assert isinstance(record["points"], codec.StoredJson)
    assert orjson.loads(orjson.dumps([record], default=codec.json_default))[0]["points"] == [
        {"point": f"tag{p:02d}", "value": float(p), "unit": "V", "quality": "good"} for p in range(3)]


def test_values_orjson_refuses_are_stored_as_floats() -> None:
    """A driver or profile that hands over NumPy scalars or a huge integer must not lose the poll."""
    import numpy as np

    poll = [Reading("D", "a", np.float64(1.5), "V", T), Reading("D", "b", np.int64(7), "V", T),  # type: ignore[arg-type]
            Reading("D", "c", 10**30, "V", T), Reading("D", "d", np.float32("nan"), "V", T)]  # type: ignore[arg-type]
    rows, _ = poll_rows(poll, _ids, {})
    assert [p["value"] for p in orjson.loads(rows[0][5])] == [1.5, 7.0, 1e30, None]


def test_a_long_poll_is_cut_every_max_points() -> None:
    rows, _ = poll_rows(_poll("BIG", T, MAX_POINTS + 5), _ids, {})
    assert [r[3] for r in rows] == [MAX_POINTS, 5]
    assert [len(orjson.loads(r[5])) for r in rows] == [MAX_POINTS, 5]


async def test_the_outbox_hands_out_one_record_per_stored_poll(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db", maintenance_interval_s=0) as store:
        first = await store.append_readings(_poll("EM-1", T, 30))
        second = await store.append_readings(_poll("EM-2", T, 30) + _poll("EM-3", T, 2))
        records = await store.pending(Lane.TELEMETRY, "", 1000)
        assert [r.id for r in records] == first + second and len(second) == 2
        assert [len(codec.record_points(r.payload)) for r in records] == [30, 30, 2]
        assert [r.id for r in await store.pending(Lane.TELEMETRY, first[0], 1)] == second[:1]
        assert await store.count("readings") == 62 and await store.count("polls") == 3


def _schema_2_store(path: Path, polls: list[tuple[str, int]], points: int) -> list[tuple]:
    """A store as schema 2 left it, one row per reading: ``points`` readings for each (device, second)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:2], start=1):
        assert isinstance(script, str)
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")
    rows = []
    for poll, (device, second) in enumerate(polls):
        for p in range(points):
            rows.append((f"01J{poll:04d}{p:019d}", device, f"p{p}", float(p), "m³" if p == 0 else "kWh", p % 3,
                         T_US + second * 1_000_000))
    conn.executemany("INSERT INTO readings VALUES (?,?,?,?,?,?,?)", rows)
    conn.close()
    return rows


async def test_a_store_of_one_row_per_reading_is_migrated_without_moving_the_upload_cursor(tmp_path: Path) -> None:
    """Schema 2 kept a row per reading; its acknowledged polls stay acknowledged, the others go up once."""
    path = tmp_path / "old.db"
    rows = _schema_2_store(path, [("EM-1", 0), ("EM-2", 0), ("EM-1", 1)], 4)
    with sqlite3.connect(path) as conn:  # the first poll is acked
        conn.execute("INSERT INTO outbox_cursor VALUES ('telemetry', ?, 0)", (rows[3][0],))
    async with Store(path, maintenance_interval_s=0) as store:
        pending = await store.pending(Lane.TELEMETRY, await store.cursor(Lane.TELEMETRY), 100)
        assert [r.id for r in pending] == [rows[4][0], rows[8][0]]  # each poll under its first reading's id
        assert codec.record_points(pending[0].payload) == [
            {"point": "p0", "value": 0.0, "unit": "m3", "quality": "good"},
            {"point": "p1", "value": 1.0, "unit": "kWh", "quality": "uncertain"},
            {"point": "p2", "value": 2.0, "unit": "kWh", "quality": "bad"},
            {"point": "p3", "value": 3.0, "unit": "kWh", "quality": "good"}]
        assert await store.count("readings") == 4 * await store.count("polls")  # (the acked poll may be pruned)
        new = await store.append_readings(_poll("EM-1", T, 2))
        assert [r.id for r in await store.pending(Lane.TELEMETRY, rows[11][0], 10)] == new
    with sqlite3.connect(path) as check:  # the readings view: canonical units and quality numbers
        assert check.execute("SELECT device_id, point, value, unit, quality, ts_us FROM readings WHERE id = ?"
                             " ORDER BY point", (rows[4][0],)).fetchall() == [
            (r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows[4:8]]


async def test_the_upgrade_goes_on_where_a_stopped_start_left_it(tmp_path: Path, monkeypatch) -> None:
    """In chunks, each its own transaction: a start stopped mid-way (systemd's start timeout, a power cut)
    loses nothing, and the next start finishes with the same polls under the same ids."""
    path = tmp_path / "old.db"
    rows = _schema_2_store(path, [(f"EM-{k % 3}", k // 3) for k in range(40)], 7)  # 40 polls of 7 readings
    monkeypatch.setattr(schema, "MIGRATION_CHUNK", 30)  # chunks end inside polls
    real_insert, inserted = schema._insert_poll, []

    def insert_then_stop(conn, run, shapes):  # type: ignore[no-untyped-def]
        if len(inserted) == 9:
            raise KeyboardInterrupt  # the process stops in the middle of a chunk
        inserted.append(run[0][0])
        real_insert(conn, run, shapes)

    monkeypatch.setattr(schema, "_insert_poll", insert_then_stop)
    with pytest.raises(KeyboardInterrupt):
        async with Store(path, maintenance_interval_s=0):
            pass
    with sqlite3.connect(path) as conn:  # two chunks committed (4 + 4 polls), the third rolled back
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM polls").fetchone()[0] == 8
        assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == len(rows) - 8 * 7
    monkeypatch.setattr(schema, "_insert_poll", real_insert)
    async with Store(path, maintenance_interval_s=0) as store:
        records = await store.pending(Lane.TELEMETRY, "", 100)
        assert [r.id for r in records] == [rows[7 * k][0] for k in range(40)]
        assert all(len(codec.record_points(r.payload)) == 7 for r in records)
        assert await store.count("readings") == len(rows)
