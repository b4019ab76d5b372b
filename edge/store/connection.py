"""The store's one write connection: plain ``sqlite3`` on a thread of its own, one hand-over per commit.

Why not aiosqlite here (the reader connection still uses it): aiosqlite sends every statement to
its thread separately, and each answer wakes the event loop through its self-pipe. A group commit
is ``BEGIN``, one statement per queued write and ``COMMIT``; at 15,000 readings a second that was
hundreds of thread hand-overs a second, and the writer thread used about twice the CPU SQLite
itself needs. Here the whole transaction is one function run on the writer thread, so a commit
costs one hand-over whatever it holds.

Why multi-row ``INSERT`` for bulk rows: ``executemany`` steps the statement once per row and
releases and re-takes the GIL around every step, which under a busy event loop means a thread
switch per row. ``INSERT ... VALUES (...),(...),...`` binds a chunk of rows and steps once
(measured here: about 30 % less CPU for the same rows). Chunk sizes are powers of two, so a
handful of prepared statements serve every batch size from the connection's statement cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",  # see edge/store/writer.py: an acknowledged record survives power loss
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA cache_size=-32000",  # 32 MiB page cache
)

_MAX_CHUNK_ROWS = 256


class MultiRowInsert:
    """``INSERT INTO table VALUES`` for many rows at once, in power-of-two chunks."""

    __slots__ = ("_sql", "table", "width")

    def __init__(self, table: str, width: int) -> None:
        self.table = table
        self.width = width
        self._sql: dict[int, str] = {}

    def __repr__(self) -> str:
        return f"MultiRowInsert({self.table!r}, {self.width})"

    def sql(self, rows: int) -> str:
        text = self._sql.get(rows)
        if text is None:
            row = "(" + ",".join("?" * self.width) + ")"
            text = self._sql[rows] = f"INSERT INTO {self.table} VALUES " + ",".join([row] * rows)  # noqa: S608
        return text

    def execute(self, conn: sqlite3.Connection, rows: Sequence[SqlRow]) -> None:
        start, total = 0, len(rows)
        while start < total:
            size = min(_MAX_CHUNK_ROWS, 1 << ((total - start).bit_length() - 1))
            conn.execute(self.sql(size), list(chain.from_iterable(rows[start : start + size])))
            start += size


# A row as sqlite3 hands it over or takes it: a tuple of column values whose Python types follow the
# column (SQLite stores int, float, str, bytes or NULL); the named queries turn rows into dataclasses.
SqlRow = tuple[Any, ...]
Statement = tuple[str | MultiRowInsert, Sequence[SqlRow]]


def run_transaction(conn: sqlite3.Connection, statements: Sequence[Statement]) -> None:
    """Run ``statements`` in one ``BEGIN IMMEDIATE`` .. ``COMMIT``; roll back and raise on any error.

    Consecutive multi-row inserts into the same table are merged, so the rows of many queued
    writes travel in the fewest statements.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        index, count = 0, len(statements)
        while index < count:
            sql, params = statements[index]
            index += 1
            if isinstance(sql, MultiRowInsert):
                rows = list(params)
                while index < count and statements[index][0] is sql:
                    rows.extend(statements[index][1])
                    index += 1
                sql.execute(conn, rows)
            elif len(params) == 1:
                conn.execute(sql, params[0])
            else:
                conn.executemany(sql, params)
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


class WriterConnection:
    """A ``sqlite3`` connection confined to one dedicated thread; every call is one hand-over."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        try:
            self._conn = await self._call(self._connect)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            for pragma in PRAGMAS:
                conn.execute(pragma)
        except BaseException:
            conn.close()
            raise
        return conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the writer thread and return its result."""
        conn = self._conn
        if conn is None:
            raise sqlite3.ProgrammingError("the store's write connection is closed")
        return await self._call(lambda: fn(conn))

    async def transaction(self, statements: Sequence[Statement]) -> None:
        await self.run(lambda conn: run_transaction(conn, statements))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> SqlRow | None:
        return await self.run(lambda conn: conn.execute(sql, params).fetchone())

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._call(conn.close)
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)

    async def _call(self, fn: Callable[[], T]) -> T:
        assert self._executor is not None, "writer connection is not open"
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
