"""A component's TableHandle reaches its own tables and nothing else; the store has no raw-SQL method."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.store import Store
from edge.store.tables import NotOwned, tables_touched

SCRIPTS = ["CREATE TABLE own_a (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;\n"
           "CREATE TABLE own_b (k TEXT PRIMARY KEY, v INTEGER NOT NULL);\n"]


def _store(tmp_path: Path) -> Store:
    return Store(tmp_path / "s.db", maintenance_interval_s=0, min_free_bytes=0, reserve_bytes=0, batch_max_delay_ms=1)


async def test_owner_reads_and_writes_its_tables_through_the_group_commit(tmp_path: Path) -> None:
    async with _store(tmp_path) as store:
        db = store.tables("widget", ["own_a", "own_b"])
        await db.migrate(SCRIPTS)
        await db.write("INSERT INTO own_a VALUES (?, ?)", [("x", 1), ("y", 2)])
        await db.write_together([("UPDATE own_a SET v = v + 10 WHERE k = ?", [("x",)]),
                                 ("INSERT INTO own_b VALUES (?, ?)", [("z", 3)])])
        assert await db.read("SELECT k, v FROM own_a ORDER BY k") == [("x", 11), ("y", 2)]
        assert await db.read_one("SELECT count(*) FROM own_b") == (1,)
        assert await db.read_one("SELECT v FROM own_a WHERE k = ?", ("nope",)) is None


@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM readings",  # reads no column: found by the B-tree it opens
    "SELECT a.k FROM own_a a JOIN alarms b ON a.k = b.alarm_id",
    "DELETE FROM events",
    "UPDATE counters SET value = 0",
    "INSERT INTO own_a SELECT id, 1 FROM readings",
])
async def test_a_statement_touching_a_table_the_owner_does_not_own_is_refused_before_it_runs(
        tmp_path: Path, sql: str) -> None:
    async with _store(tmp_path) as store:
        db = store.tables("widget", ["own_a"])
        await db.migrate(SCRIPTS)
        with pytest.raises(NotOwned, match="widget: statement touches"):
            if sql.startswith("SELECT"):
                await db.read(sql)
            else:
                await db.write(sql)
        assert await store.count("events") == 0 and await store.counters() == {}


async def test_a_statement_sqlite_cannot_prepare_fails_where_it_runs_with_its_own_message(tmp_path: Path) -> None:
    async with _store(tmp_path) as store:
        db = store.tables("widget", ["own_a"])
        with pytest.raises(sqlite3.OperationalError, match="no such table: own_a"):
            await db.read("SELECT k FROM own_a")


def test_tables_touched_names_what_sqlite_compiles(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "t.db")
    conn.executescript("CREATE TABLE t1 (a INTEGER); CREATE TABLE t2 (a INTEGER); CREATE INDEX t2_a ON t2(a);")
    assert tables_touched(conn, "SELECT count(*) FROM t1") == {"t1"}
    assert tables_touched(conn, "SELECT a FROM t2 WHERE a = ?", (1,)) == {"t2"}  # via its index too
    assert tables_touched(conn, "INSERT INTO t1 SELECT a FROM t2") == {"t1", "t2"}
    assert tables_touched(conn, "ALTER TABLE t1 RENAME TO t3") == {"t1"}
    assert tables_touched(conn, "SELECT 1") == set()
    assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 't3'").fetchone() == (0,)  # nothing ran
    conn.close()


def test_the_store_has_no_raw_sql_method(tmp_path: Path) -> None:
    assert not {"read", "read_one", "execute_write", "execute", "migrate_component"} & set(dir(_store(tmp_path)))
