"""The store's tables, created and migrated by ``PRAGMA user_version``.

Every record table is keyed by its ULID ``id`` (TEXT PRIMARY KEY, WITHOUT ROWID): ids are time
ordered, so inserts append at the B-tree's right edge and the outbox walks key order to drain
oldest first. Times are integer microseconds since the epoch, UTC (``*_us`` columns).

Tables
    polls           telemetry lane, one row per device poll: its points in their upload form (JSON),
                    the number of points and the poll's shape (schema 3; ``edge.store.codec`` says why).
                    A rowid table with a unique index on ``id``: a poll's row (about 2 KB for 30
                    points) would spill into overflow pages in a WITHOUT ROWID table.
                    Per-device history for the panel comes from rollup tables fed by the pipeline.
    poll_shapes     the canonical point names and units of each distinct poll shape, by ``shape_id``
    readings        a view: the polls one row per reading (id = the poll's), for people and tests
                    reading the file; nothing on the hot path reads it
    events          event lane (detections, faults, evictions; evidence kept as a file)
    alarm_log       alarm lane: every step of every alarm (raised/acked/escalated/resolved/cleared)
    alarms          current state of each alarm, for rules and the panel (not uploaded itself)
    indicators      indicator lane (versioned: same key, higher version)
    devices         device lane: the inventory, one row per version of a device's entry (never evicted)
    outbox_cursor   per lane, the last id the platform acknowledged (durable ack)
    dead_letter     records the platform rejected as invalid, with its message
    counters        named monotonic counters (evictions, dead letters, ...)

Later migrations append to ``MIGRATIONS``; never edit a released one. Stages that own tables of
their own (alarms, indicators, panel) keep their scripts beside their code and apply them with
``Store.tables(name, tables).migrate(scripts)``, versioned per component in ``component_schema``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

import orjson

from edge.store import codec

log = logging.getLogger(__name__)

# A script (run in one transaction with its version), or a function given the writer's connection and
# its version number, that runs its own transactions and sets the version in its last one.
Migration = str | Callable[[sqlite3.Connection, int], None]

_POLLS = """
    CREATE TABLE IF NOT EXISTS poll_shapes (
        id INTEGER PRIMARY KEY,
        names TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS polls (
        id TEXT NOT NULL UNIQUE,
        device_id TEXT NOT NULL,
        ts_us INTEGER NOT NULL,
        n INTEGER NOT NULL,
        shape INTEGER NOT NULL,
        points TEXT NOT NULL
    );
"""

_READINGS_VIEW = """
    CREATE VIEW readings AS
    SELECT p.id AS id, p.device_id AS device_id,
           json_extract(s.names, '$[' || j.key || '][0]') AS point,
           json_extract(j.value, '$.value') AS value,
           json_extract(s.names, '$[' || j.key || '][1]') AS unit,
           CASE json_extract(j.value, '$.quality') WHEN 'good' THEN 0 WHEN 'uncertain' THEN 1 ELSE 2 END AS quality,
           p.ts_us AS ts_us
    FROM polls p JOIN poll_shapes s ON s.id = p.shape, json_each(p.points) j;
"""


MIGRATION_CHUNK = 50_000  # stored readings regrouped per transaction at the schema 3 upgrade


def _readings_to_polls(conn: sqlite3.Connection, version: int) -> None:
    """Schema 3: telemetry moves from one row per reading to one row per poll.

    Each run of consecutive readings of one device and one instant becomes a poll whose id is its
    first reading's id, so the upload cursor (the last reading of the last acknowledged poll) still
    stands between what the platform has and what it does not. The indicator fold's cursor may
    fall inside a poll that a fold chunk cut (one poll at most): that poll counts as folded.

    In transactions of ``MIGRATION_CHUNK`` readings, each moving whole polls and deleting the
    readings it moved. Why not one transaction: a store near its quota holds millions of readings;
    one transaction would need twice their disk (the readings' pages are freed only at its commit)
    and minutes on a slow box, and systemd stops a start that takes longer than TimeoutStartSec,
    which would roll it all back, every time. In chunks, the freed pages are reused by the next
    chunk's polls, and a start that is stopped goes on at the next start where it was.
    """
    conn.execute("BEGIN IMMEDIATE")
    _execute_each(conn, _POLLS)
    conn.execute("COMMIT")
    left = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
    if left:
        log.warning("store: regrouping %d stored readings into polls (once, at this upgrade)", left)
    shapes: dict[tuple[tuple[str, str], ...], int] = {}
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute("SELECT id, device_id, point, value, unit, quality, ts_us FROM readings"
                                " ORDER BY id LIMIT ?", (MIGRATION_CHUNK,)).fetchall()
            runs = _runs(rows)
            if len(rows) == MIGRATION_CHUNK and len(runs) > 1:
                runs.pop()  # the last poll may go on beyond this chunk: it moves with the next
            for run in runs:
                _insert_poll(conn, run, shapes)
            if runs:
                conn.execute("DELETE FROM readings WHERE id <= ?", (runs[-1][-1][0],))
            done = len(rows) < MIGRATION_CHUNK
            if done:
                _execute_each(conn, "DROP TABLE readings;" + _READINGS_VIEW)
                conn.execute(f"PRAGMA user_version={version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if done:
            return


Row = tuple[str, str, str, float | None, str, int, int]  # a schema 2 readings row


def _runs(rows: list[Row]) -> list[list[Row]]:
    """Consecutive rows of one device and one instant, cut every ``codec.MAX_POINTS``."""
    runs: list[list[Row]] = []
    for row in rows:
        last = runs[-1] if runs else None
        if last and last[0][1] == row[1] and last[0][6] == row[6] and len(last) < codec.MAX_POINTS:
            last.append(row)
        else:
            runs.append([row])
    return runs


def _insert_poll(conn: sqlite3.Connection, run: list[Row], shapes: dict[tuple[tuple[str, str], ...], int]) -> None:
    key = tuple((point, unit) for _i, _d, point, _v, unit, _q, _t in run)
    shape = shapes.get(key)
    if shape is None:
        names = codec.shape_names(key)
        shape = shapes[key] = codec.shape_id(names)
        conn.execute("INSERT OR IGNORE INTO poll_shapes VALUES (?,?)", (shape, names))
    points = orjson.dumps([{"point": point, "value": value, "unit": codec.upload_unit(unit),
                            "quality": codec.quality_label(quality)}
                           for _i, _d, point, value, unit, quality, _t in run]).decode()
    first = run[0]
    conn.execute("INSERT INTO polls VALUES (?,?,?,?,?,?)", (first[0], first[1], first[6], len(run), shape, points))


def _execute_each(conn: sqlite3.Connection, script: str) -> None:
    """Run a script's statements one by one: ``executescript`` would commit the transaction they belong in."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


MIGRATIONS: list[Migration] = [
    # 1: initial schema
    """
    CREATE TABLE readings (
        id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        point TEXT NOT NULL,
        value REAL,
        unit TEXT NOT NULL,
        quality INTEGER NOT NULL,
        ts_us INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        code TEXT NOT NULL,
        ts_us INTEGER NOT NULL,
        device_id TEXT,
        severity TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT NOT NULL,
        evidence_path TEXT
    ) WITHOUT ROWID;
    CREATE INDEX events_device ON events(device_id, ts_us);

    CREATE TABLE alarm_log (
        id TEXT PRIMARY KEY,
        alarm_id TEXT NOT NULL,
        code TEXT NOT NULL,
        state TEXT NOT NULL,
        ts_us INTEGER NOT NULL,
        device_id TEXT,
        severity TEXT NOT NULL,
        actor TEXT NOT NULL,
        message TEXT NOT NULL,
        note TEXT NOT NULL,
        data TEXT NOT NULL,
        evidence_path TEXT
    ) WITHOUT ROWID;
    CREATE INDEX alarm_log_alarm ON alarm_log(alarm_id, id);

    CREATE TABLE alarms (
        alarm_id TEXT PRIMARY KEY,
        code TEXT NOT NULL,
        device_id TEXT,
        severity TEXT NOT NULL,
        state TEXT NOT NULL,
        is_open INTEGER NOT NULL,
        message TEXT NOT NULL,
        data TEXT NOT NULL,
        evidence_path TEXT,
        raised_us INTEGER NOT NULL,
        updated_us INTEGER NOT NULL,
        acked_us INTEGER,
        acked_by TEXT,
        resolved_us INTEGER,
        resolved_by TEXT,
        note TEXT NOT NULL DEFAULT '',
        cleared_us INTEGER,
        escalated_us INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX alarms_open ON alarms(is_open, raised_us);
    CREATE INDEX alarms_key ON alarms(code, device_id, is_open);
    CREATE INDEX alarms_raised ON alarms(raised_us);

    CREATE TABLE indicators (
        id TEXT PRIMARY KEY,
        key TEXT NOT NULL,
        version INTEGER NOT NULL,
        code TEXT NOT NULL,
        granularity TEXT NOT NULL,
        period_start_us INTEGER NOT NULL,
        period_end_us INTEGER NOT NULL,
        value REAL,
        unit TEXT NOT NULL,
        samples INTEGER NOT NULL,
        coverage REAL NOT NULL,
        payload TEXT NOT NULL,
        UNIQUE (key, version)
    ) WITHOUT ROWID;
    CREATE INDEX indicators_code ON indicators(code, granularity, period_start_us);

    CREATE TABLE outbox_cursor (
        lane TEXT PRIMARY KEY,
        last_id TEXT NOT NULL,
        updated_us INTEGER NOT NULL
    );

    CREATE TABLE dead_letter (
        id TEXT PRIMARY KEY,
        lane TEXT NOT NULL,
        record_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        code TEXT,
        message TEXT NOT NULL,
        ts_us INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );

    CREATE TABLE component_schema (
        component TEXT PRIMARY KEY,
        version INTEGER NOT NULL
    );
    """,
    # 2: the device inventory lane (contract v2)
    """
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        ts_us INTEGER NOT NULL,
        payload TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX devices_version ON devices(device_id, version);
    """,
    # 3: telemetry stored one row per poll (issue 13 point 9), readings kept as a view
    _readings_to_polls,
]
