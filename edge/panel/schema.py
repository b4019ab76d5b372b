"""The panel's own tables, applied with ``Store.tables("panel", PANEL_TABLES).migrate(PANEL_MIGRATIONS)``.

Append new scripts; never edit a released one.

    panel_users          accounts: argon2 hash, role, lock-out state
    panel_sessions       server-side sessions, keyed by the SHA-256 of the cookie value (a copied
                         database does not hand out live sessions); each carries its CSRF token
    panel_audit          who did what, when, from where (ULID ids, so ``ORDER BY id`` is time order)
    panel_latest         last value per device/point, so the panel shows values right after a restart
                         without scanning ``readings`` (which has no secondary index, on purpose)
    panel_device_status  last online/offline word per device from the drivers
    panel_rollup_5m      per device/point/5-minute bucket: min, max, sum, count, last (24 h charts)
    panel_rollup_1h      the same per hour (7 d charts); both are pruned by age, so they stay bounded
"""

from __future__ import annotations

PANEL_COMPONENT = "panel"
PANEL_TABLES = ("panel_users", "panel_sessions", "panel_audit", "panel_latest", "panel_device_status",
                "panel_rollup_5m", "panel_rollup_1h")

_ROLLUP_COLUMNS = """(
        device_id TEXT NOT NULL,
        point TEXT NOT NULL,
        bucket_us INTEGER NOT NULL,
        vmin REAL NOT NULL,
        vmax REAL NOT NULL,
        vsum REAL NOT NULL,
        n INTEGER NOT NULL,
        vlast REAL NOT NULL,
        last_us INTEGER NOT NULL,
        PRIMARY KEY (device_id, point, bucket_us)
    ) WITHOUT ROWID"""

PANEL_MIGRATIONS: list[str] = [
    f"""
    CREATE TABLE panel_users (
        user_id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        failed_logins INTEGER NOT NULL DEFAULT 0,
        locked_until_us INTEGER,
        created_us INTEGER NOT NULL,
        password_changed_us INTEGER NOT NULL,
        last_login_us INTEGER
    ) WITHOUT ROWID;

    CREATE TABLE panel_sessions (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        csrf_token TEXT NOT NULL,
        created_us INTEGER NOT NULL,
        last_seen_us INTEGER NOT NULL,
        expires_us INTEGER NOT NULL,
        ip TEXT NOT NULL,
        user_agent TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX panel_sessions_user ON panel_sessions(user_id);

    CREATE TABLE panel_audit (
        id TEXT PRIMARY KEY,
        ts_us INTEGER NOT NULL,
        username TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL,
        ip TEXT NOT NULL,
        ok INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX panel_audit_user ON panel_audit(username, id);

    CREATE TABLE panel_latest (
        device_id TEXT NOT NULL,
        point TEXT NOT NULL,
        value REAL NOT NULL,
        unit TEXT NOT NULL,
        quality INTEGER NOT NULL,
        ts_us INTEGER NOT NULL,
        PRIMARY KEY (device_id, point)
    ) WITHOUT ROWID;

    CREATE TABLE panel_device_status (
        device_id TEXT PRIMARY KEY,
        online INTEGER NOT NULL,
        ts_us INTEGER NOT NULL,
        since_us INTEGER NOT NULL,
        error TEXT
    ) WITHOUT ROWID;

    CREATE TABLE panel_rollup_5m {_ROLLUP_COLUMNS};
    CREATE INDEX panel_rollup_5m_bucket ON panel_rollup_5m(bucket_us);
    CREATE TABLE panel_rollup_1h {_ROLLUP_COLUMNS};
    CREATE INDEX panel_rollup_1h_bucket ON panel_rollup_1h(bucket_us);
    """,
]
