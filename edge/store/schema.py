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

import sqlite3
from collections.abc import Callable

import orjson

from edge.store import codec

# A script, or a function run inside the migration's transaction on the writer's connection.
Migration = str | Callable[[sqlite3.Connection], None]

_POLLS = """
    CREATE TABLE poll_shapes (
        id INTEGER PRIMARY KEY,
        names TEXT NOT NULL
    );
    CREATE TABLE polls (
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


def _readings_to_polls(conn: sqlite3.Connection) -> None:
    """Schema 3: telemetry moves from one row per reading to one row per poll.

    Each run of consecutive readings of one device and one instant becomes a poll whose id is its
    first reading's id, so the upload cursor (the last reading of the last acknowledged poll) still
    stands between what the platform has and what it does not. The indicator fold's cursor may
    fall inside a poll that a fold chunk cut (one poll per migration at most): that poll counts as
    folded. Runs once, at the first start of this version, in one transaction.
    """
    _execute_each(conn, _POLLS)
    shapes: dict[tuple[tuple[str, str], ...], int] = {}
    labels = {0: "good", 1: "uncertain", 2: "bad"}
    after = ""
    pending: list[tuple[str, str, float | None, str, int, int]] = []  # the run being gathered

    def flush() -> None:
        key = tuple((p, u) for _i, p, _v, u, _q, _t in pending)
        shape = shapes.get(key)
        if shape is None:
            names = codec.shape_names(key)
            shape = shapes[key] = codec.shape_id(names)
            conn.execute("INSERT OR IGNORE INTO poll_shapes VALUES (?,?)", (shape, names))
        points = orjson.dumps([{"point": p, "value": v, "unit": codec.upload_unit(u), "quality": labels.get(q, "bad")}
                               for _i, p, v, u, q, _t in pending]).decode()
        first = pending[0]
        conn.execute("INSERT INTO polls VALUES (?,?,?,?,?,?)",
                     (first[0], device, first[5], len(pending), shape, points))
        pending.clear()

    device = ""
    while True:
        rows = conn.execute("SELECT id, device_id, point, value, unit, quality, ts_us FROM readings"
                            " WHERE id > ? ORDER BY id LIMIT 20000", (after,)).fetchall()
        for rid, device_id, point, value, unit, quality, ts_us in rows:
            if pending and (device_id != device or ts_us != pending[0][5] or len(pending) >= codec.MAX_POINTS):
                flush()
            device = device_id
            pending.append((rid, point, value, unit, quality, ts_us))
        if len(rows) < 20000:
            break
        after = rows[-1][0]
    if pending:
        flush()
    _execute_each(conn, "DROP TABLE readings;" + _READINGS_VIEW)


def _execute_each(conn: sqlite3.Connection, script: str) -> None:
    """Run a script's statements one by one: ``executescript`` would commit the migration's transaction."""
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
