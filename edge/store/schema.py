"""The store's tables, created and migrated by ``PRAGMA user_version``.

Every record table is keyed by its ULID ``id`` (TEXT PRIMARY KEY, WITHOUT ROWID): ids are time
ordered, so inserts append at the B-tree's right edge and the outbox walks key order to drain
oldest first. Times are integer microseconds since the epoch, UTC (``*_us`` columns).

Tables
    readings        telemetry lane (device, point, value, unit, quality, ts). Deliberately no secondary
                    index: a (device, point, ts) index cuts ingest from ~215k to ~57k rows/s here.
                    Per-device history for the panel comes from rollup tables fed by the pipeline.
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

MIGRATIONS: list[str] = [
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
]
