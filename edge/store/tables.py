"""The narrow database handle a component gets for the tables it owns, and only for those.

Some components keep state of their own in the store's file: the panel (users, sessions, audit, live
roll-ups), the indicator engine (its series, events, points, state), the normaliser (counter state),
the rule engine (state-rule timers). They own those tables outright, schema included, so they write
their own SQL, but only against their own tables: ``Store.tables(owner, tables)`` gives each a
``TableHandle`` naming them, and the core tables (``readings``, ``alarms``, ...) stay reachable only
through the store's named methods.

How "only their own" is kept: the first time a handle sees a statement, SQLite itself says which
tables it touches. The statement is prepared (``EXPLAIN``, nothing runs) on the writer's thread with
an authorizer that records every table read, written, altered or dropped, and the B-trees its
bytecode opens are mapped back to their tables (a ``count(*)`` reads no column, so the authorizer
alone would not name it). A statement that touches a table the handle does not own raises
``NotOwned`` before it runs; an approved statement is remembered, so the check costs one set lookup
after the first time. A statement SQLite cannot prepare (a table not created yet, a syntax error) is
not judged here: it goes on and fails where it runs, with SQLite's own message, as before.

Writes go through the store's group commit like every other write, so ``write`` returning means the
rows are on disk.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from edge.errors import StoreError
from edge.store.connection import SqlRow, Statement
from edge.store.writer import StoreWriter

_MAX_REMEMBERED = 1024  # distinct statements remembered per handle (SQL built with IN-lists can vary)

_NAMING_ACTIONS = {
    sqlite3.SQLITE_READ: 0,
    sqlite3.SQLITE_INSERT: 0,
    sqlite3.SQLITE_UPDATE: 0,
    sqlite3.SQLITE_DELETE: 0,
    sqlite3.SQLITE_DROP_TABLE: 0,
    sqlite3.SQLITE_CREATE_TABLE: 0,
    sqlite3.SQLITE_ALTER_TABLE: 1,  # arg1 is the database name, arg2 the table
}
_OPENING_OPCODES = {"OpenRead": 2, "OpenWrite": 2, "Clear": 1}  # opcode -> operand holding the root page


class NotOwned(StoreError):
    """A component sent SQL that touches a table it does not own (a programming error, raised before it runs)."""


class TableHandle:
    """Read and write one component's own tables through the store's connections."""

    def __init__(self, db: StoreWriter, owner: str, tables: Sequence[str]) -> None:
        self._db = db
        self.owner = owner
        self.tables = frozenset(t.lower() for t in tables)
        self._approved: set[str] = set()

    def __repr__(self) -> str:
        return f"TableHandle({self.owner!r}, {sorted(self.tables)})"

    async def migrate(self, scripts: Sequence[str]) -> None:
        """Apply the owner's schema scripts (an append-only list), versioned per owner in ``component_schema``."""
        await self._db.migrate_component(self.owner, scripts)

    async def read(self, sql: str, params: Sequence[Any] = ()) -> list[SqlRow]:
        await self._check(sql, params)
        return await self._db.read(sql, params)

    async def read_one(self, sql: str, params: Sequence[Any] = ()) -> SqlRow | None:
        rows = await self.read(sql, params)
        return rows[0] if rows else None

    async def write(self, sql: str, rows: Sequence[SqlRow] = ((),)) -> None:
        """Run one statement once per row in ``rows``, in one group commit; returns once on disk."""
        await self.write_together([(sql, rows)])

    async def write_together(self, statements: Sequence[tuple[str, Sequence[SqlRow]]]) -> None:
        """Several statements that must commit together (or not at all)."""
        batch: list[Statement] = []
        rows = 0
        for sql, params in statements:
            params = list(params)
            await self._check(sql, params[0] if params else ())
            batch.append((sql, params))
            rows += len(params)
        await self._db.submit(batch, max(rows, 1))

    async def _check(self, sql: str, params: Sequence[Any]) -> None:
        if sql in self._approved:
            return
        try:
            touched = await self._db.run(lambda conn: tables_touched(conn, sql, params))
        except sqlite3.Error:
            return  # not judged here: the statement itself fails where it runs
        foreign = touched - self.tables
        if foreign:
            raise NotOwned(f"{self.owner}: statement touches {', '.join(sorted(foreign))}, which "
                           f"{self.owner} does not own (its tables: {', '.join(sorted(self.tables))}): {sql[:120]}")
        if len(self._approved) >= _MAX_REMEMBERED:
            self._approved.clear()
        self._approved.add(sql)


def tables_touched(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> set[str]:
    """The real tables (lower case) that ``sql`` reads or writes, from SQLite's own compilation of it.

    Prepares ``EXPLAIN <sql>`` (the statement itself does not run) with an authorizer installed, then
    maps the root pages its bytecode opens back to table names. Internal ``sqlite_*`` tables and
    names that are not tables of this file (views' bodies are not followed) are left out.
    """
    named: set[str] = set()

    def authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
        which = _NAMING_ACTIONS.get(action)
        if which is not None:
            name = (arg1, arg2)[which]
            if name:
                named.add(name.lower())
        return sqlite3.SQLITE_OK

    conn.set_authorizer(authorizer)
    try:
        program = conn.execute("EXPLAIN " + sql, params).fetchall()
    finally:
        conn.set_authorizer(None)
    schema = conn.execute("SELECT lower(tbl_name), rootpage FROM sqlite_schema WHERE type IN ('table', 'index')"
                          " AND tbl_name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").fetchall()
    by_root = {int(root): name for name, root in schema if root}
    real = set(by_root.values())
    for _addr, opcode, p1, p2, *_rest in program:
        operand = _OPENING_OPCODES.get(opcode)
        if operand is not None:
            table = by_root.get(int((p1, p2)[operand - 1]))
            if table is not None:
                named.add(table)
    return {name for name in named if name in real}
