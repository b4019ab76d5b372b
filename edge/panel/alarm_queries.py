"""Reading alarms for the panel: the live list, history search, one alarm's steps, CSV export.

The queries themselves are the store's (``edge.store.alarm_queries``, ``Store.alarms``): the ``alarms``
table is the store's, so its SQL and its indexes live there. This module keeps what is the panel's:
``AlarmQuery``, the one model of what staff filter alarms by (the live list, the history, the CSV
export and the JSON API all take it from the query string), the CSV export (spreadsheet-safe cells, a
BOM so Excel reads Chinese right) and the short names the routes call.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Annotated, Any

from fastapi import HTTPException
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from edge.clock import to_us
from edge.panel.devices import DeviceIndex
from edge.store import Store
from edge.store.alarm_queries import STATES, AlarmFilter, AlarmPage, AlarmRow, AlarmStep

__all__ = ["CSV_HEADER", "STATES", "AlarmFilter", "AlarmPage", "AlarmQuery", "AlarmRow", "AlarmStep", "change_marker",
           "codes", "export_csv", "get_alarm", "list_alarms"]

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
Text = Annotated[str, Field(max_length=100)]
_TIME = TypeAdapter(datetime)  # the API's parsing of a time, unchanged: ISO 8601 or Unix seconds


class AlarmQuery(BaseModel):
    """What staff filter alarms by, as every alarm list takes it from the query string.

    The pages (live list, history, CSV export) and the JSON API read the same fields with the same
    meaning; an empty field does not filter. Routes take it as ``Annotated[AlarmQuery, Query()]``,
    with paging (``page``, or ``offset`` / ``limit`` / ``order``) beside it, and turn it into the
    store's ``AlarmFilter`` with ``to_filter``, which is where the words become ids and instants.
    """

    open: bool | None = Field(None, description="only open (true) or only closed (false) alarms")
    severity: Annotated[str, Field(pattern="^(|critical|major|warning|info)$")] = ""
    state: Annotated[str, Field(pattern="^(|raised|acknowledged|escalated|resolved|cleared)$")] = ""
    code: Text = Field("", description="alarm code, e.g. fire.hydrant_pressure_low")
    building: Text = Field("", description="only the devices of this building")
    device: Text = Field("", description="a device id, or text its name or id contains")
    device_id: Annotated[str, Field(max_length=64)] = Field("", description="exactly this device")
    q: Text = Field("", description="free text over message, code, device id and note")
    since: Text = Field("", description="raised on or after: a local day YYYY-MM-DD, or a time with its offset")
    until: Text = Field("", description="raised before the end of this local day, or before this time")

    def to_filter(self, index: DeviceIndex, tz: tzinfo, *, open: bool | None = None) -> AlarmFilter:
        """The store's filter: building and device words become device ids, days and times microseconds.

        ``open`` overrides the field (the live list shows open alarms only). Raises HTTP 422 naming the
        field for a ``since`` / ``until`` that is neither a day nor a time with an offset.
        """
        return AlarmFilter(
            open=self.open if open is None else open, severity=self.severity or None, state=self.state or None,
            code=self.code or None, device_ids=self._device_ids(index), q=self.q or None,
            since_us=_instant(self.since, tz, "since", end=False), until_us=_instant(self.until, tz, "until", end=True),
        )

    def _device_ids(self, index: DeviceIndex) -> tuple[str, ...] | None:
        """A building's devices, devices matching a name/id text, exactly one device, or no filter (None)."""
        ids: set[str] | None = None
        if self.building:
            ids = {d for d, b in index.building_of.items() if b == self.building}
        if self.device:
            matching = set(index.ids_matching(self.device)) | {self.device}
            ids = matching if ids is None else ids & matching
        if self.device_id:
            ids = {self.device_id} if ids is None else ids & {self.device_id}
        return tuple(sorted(ids)) if ids is not None else None


def _instant(value: str, tz: tzinfo, name: str, *, end: bool) -> int | None:
    """A date or time filter as microseconds; None for "".

    ``YYYY-MM-DD`` in the estate's time zone (start of that day, or of the next for ``end``), or a time
    with its offset (as pydantic reads a ``datetime``).
    """
    if not value:
        return None
    try:
        if _DAY.fullmatch(value):
            day = date.fromisoformat(value) + timedelta(days=1 if end else 0)
            return to_us(datetime.combine(day, time(0), tz))
        moment = _TIME.validate_python(value)
    except (ValueError, OverflowError, ValidationError):
        raise HTTPException(422, f"{name}: not a day (YYYY-MM-DD) or a time with an offset: {value!r}") from None
    if moment.tzinfo is None:
        raise HTTPException(422, f"{name}: give a time zone offset (e.g. 2026-01-01T00:00:00+08:00)")
    try:
        return to_us(moment)
    except (OverflowError, ValueError, OSError) as exc:
        raise HTTPException(422, f"{name}: out of range") from exc


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
