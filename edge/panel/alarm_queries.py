"""Reading alarms for the panel: the live list, history search, one alarm's steps, CSV export.

The queries themselves are the store's (``edge.store.alarm_queries``, ``Store.alarms``): the ``alarms``
table is the store's, so its SQL and its indexes live there. This module keeps what is the panel's:
the CSV export (spreadsheet-safe cells, a BOM so Excel reads Chinese right) and the short names the
routes call.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

from edge.store import Store
from edge.store.alarm_queries import STATES, AlarmFilter, AlarmPage, AlarmRow, AlarmStep

__all__ = ["CSV_HEADER", "STATES", "AlarmFilter", "AlarmPage", "AlarmRow", "AlarmStep", "change_marker", "codes",
           "export_csv", "get_alarm", "list_alarms"]


async def list_alarms(store: Store, flt: AlarmFilter, *, limit: int = 50, offset: int = 0,
                      order: str = "time") -> AlarmPage:
    return await store.alarms.page(flt, limit=limit, offset=offset, order=order)


async def get_alarm(store: Store, alarm_id: str) -> tuple[AlarmRow, list[AlarmStep]] | None:
    return await store.alarms.get(alarm_id)


async def change_marker(store: Store) -> str:
    return await store.alarms.change_marker()


async def codes(store: Store, limit: int = 200) -> list[str]:
    return await store.alarms.codes(limit)


CSV_HEADER = ("alarm_id", "code", "device_id", "device_name", "building", "severity", "state", "message",
              "raised_at", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "note", "cleared_at")


def _cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas (CSV injection): a cell starting with = + - @ gets a leading quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def export_csv(store: Store, flt: AlarmFilter, *, names: dict[str, str], buildings: dict[str, str],
                     fmt: Any, max_rows: int = 1_000_000, chunk: int = 2000) -> AsyncIterator[str]:
    """CSV text in chunks (keyset pagination, newest first); UTF-8 BOM first so Excel reads Chinese right."""
    yield "\ufeff"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    cursor: tuple[int, str] | None = None
    sent = 0
    while sent < max_rows:
        rows = await store.alarms.export_chunk(flt, cursor, min(chunk, max_rows - sent))
        if not rows:
            break
        for a in rows:
            writer.writerow([_cell(v) for v in (
                a.alarm_id, a.code, a.device_id or "", names.get(a.device_id or "", ""),
                buildings.get(a.device_id or "", ""), a.severity, a.state, a.message, fmt(a.raised_us),
                fmt(a.acked_us), a.acked_by or "", fmt(a.resolved_us), a.resolved_by or "", a.note, fmt(a.cleared_us),
            )])
        sent += len(rows)
        cursor = (rows[-1].raised_us, rows[-1].alarm_id)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
