"""The store's write path: multi-row inserts in power-of-two chunks, one transaction per call."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from edge.store.connection import MultiRowInsert, WriterConnection, run_transaction


def table(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    return conn


@pytest.mark.parametrize("count", [1, 2, 255, 256, 257, 1000])
def test_every_row_goes_in_once_and_in_order(tmp_path: Path, count: int) -> None:
    conn = table(tmp_path)
    insert = MultiRowInsert("t", 2)
    rows = [(i, f"n{i}") for i in range(count)]
    # Two queued writes in a row: merged into one run of chunks.
    run_transaction(conn, [(insert, rows[: count // 2]), (insert, rows[count // 2 :])])
    assert conn.execute("SELECT id, name FROM t ORDER BY rowid").fetchall() == rows
    assert len(insert._sql) <= 9  # a handful of prepared statements serve every size (256, 128, ..., 1)


def test_a_failing_statement_rolls_back_the_whole_transaction(tmp_path: Path) -> None:
    conn = table(tmp_path)
    insert = MultiRowInsert("t", 2)
    with pytest.raises(sqlite3.IntegrityError):
        run_transaction(conn, [(insert, [(1, "a"), (2, "b")]), ("INSERT INTO t VALUES (?, ?)", [(1, "dup")])])
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    assert not conn.in_transaction


async def test_writer_connection_runs_on_its_own_thread_and_closes(tmp_path: Path) -> None:
    writer = WriterConnection(tmp_path / "w.db")
    await writer.open()
    thread = await writer.run(lambda conn: threading.current_thread().name)
    assert thread.startswith("store-writer") and thread != threading.current_thread().name
    assert await writer.fetchone("PRAGMA journal_mode") == ("wal",)
    await writer.close()
    with pytest.raises(sqlite3.ProgrammingError):
        await writer.run(lambda conn: None)
