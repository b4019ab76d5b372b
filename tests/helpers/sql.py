"""Raw SQL against a test's store, for assertions on what is in the file and for breaking it on purpose.

The store has no public raw-SQL method (components ask it through named methods or their own
``TableHandle``); tests still need to look at rows directly, so they go through the store's
private connections here, in one place, rather than through a public door the code could use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edge.store import Store


async def sql_rows(store: Store, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    """Rows of a read-only query, on the store's reader connection."""
    return await store._db.read(sql, params)


async def sql_one(store: Store, sql: str, params: Sequence[Any] = ()) -> tuple | None:
    rows = await sql_rows(store, sql, params)
    return rows[0] if rows else None


async def sql_write(store: Store, sql: str, params: Sequence[tuple] = ((),)) -> None:
    """One statement through the store's group commit (once per row of ``params``)."""
    await store._db.submit([(sql, list(params))], len(params))


async def migrate(store: Store, component: str, scripts: Sequence[str]) -> None:
    """Apply a component's schema scripts as its TableHandle would (``component_schema`` versioning)."""
    await store._db.migrate_component(component, scripts)
