"""The write statements the store's parts share: record inserts, counters, alarm state, eviction.

Why a module of its own: the writer (appends, the disk-full emergency eviction on its own thread),
the outbox (dead letters) and maintenance (quota eviction, pruning) all write these statements; in
one place they stay identical whichever part runs them, and no part imports another to get them.
Every function is pure: it builds ``(sql, rows)`` pairs, the writer runs them.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from edge.clock import to_us
from edge.ids import new_ids
from edge.messages import say
from edge.records import AlarmRecord, AlarmState, Event, Lane, Severity
from edge.store import codec
from edge.store.connection import MultiRowInsert, Statement

INSERT_POLL = MultiRowInsert("polls", 6)
INSERT_SHAPE = "INSERT OR IGNORE INTO poll_shapes VALUES (?,?)"
INSERT_EVENT = "INSERT INTO events VALUES (?,?,?,?,?,?,?,?)"
INSERT_ALARM_LOG = "INSERT INTO alarm_log VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
INSERT_INDICATOR = "INSERT INTO indicators VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
INSERT_DEVICE = "INSERT INTO devices VALUES (?,?,?,?,?)"


def counter_add(name: str, amount: int) -> Statement:
    """Add ``amount`` to the named monotonic counter (created at 0 on first use)."""
    return (
        "INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
        [(name, amount)],
    )


def eviction_statements(lane: Lane, table: str, first: str, last: str, count: int, now: datetime) -> list[Statement]:
    """Delete one lane's id range and record it: counters and a ``store.eviction`` event, in one transaction."""
    event = Event(
        code="store.eviction",
        ts=now,
        severity=Severity.WARNING,
        data={"lane": lane.value, "count": count, "first_id": first, "last_id": last},
        **say("store.eviction", count=count, lane=lane.value),
    )
    (eid,) = new_ids(1)
    return [
        (f"DELETE FROM {table} WHERE id BETWEEN ? AND ?", [(first, last)]),  # noqa: S608 - fixed table names
        counter_add(f"store.evicted.{lane.value}", count),
        counter_add("store.evictions", 1),
        (INSERT_EVENT, [codec.event_row(event, eid, None)]),
    ]


def alarm_state_statement(record: AlarmRecord, evidence: str | None) -> Statement:
    """The ``alarms`` row update that one alarm step implies."""
    ts = to_us(record.ts)
    state = record.state
    if state is AlarmState.RAISED:
        return (
            "INSERT INTO alarms(alarm_id, code, device_id, severity, state, is_open, message, data, evidence_path,"
            " raised_us, updated_us) VALUES (?,?,?,?,?,1,?,?,?,?,?) ON CONFLICT(alarm_id) DO NOTHING",
            [(record.alarm_id, record.code, record.device_id, str(record.severity), str(state), record.message,
              codec.dumps(record.data), evidence, ts, ts)],
        )
    if state is AlarmState.ACKNOWLEDGED:
        return ("UPDATE alarms SET state=CASE WHEN is_open=1 THEN ? ELSE state END, acked_us=?, acked_by=?,"
                " updated_us=? WHERE alarm_id=?", [(str(state), ts, record.actor, ts, record.alarm_id)])
    if state is AlarmState.ESCALATED:
        return ("UPDATE alarms SET escalated_us=?, updated_us=?, state=CASE WHEN state='raised' THEN ? ELSE state END"
                " WHERE alarm_id=?", [(ts, ts, str(state), record.alarm_id)])
    if state is AlarmState.RESOLVED:
        return ("UPDATE alarms SET state=?, is_open=0, resolved_us=?, resolved_by=?, note=?, updated_us=?"
                " WHERE alarm_id=?", [(str(state), ts, record.actor, record.note, ts, record.alarm_id)])
    return ("UPDATE alarms SET state=CASE WHEN resolved_us IS NULL THEN ? ELSE state END, is_open=0, cleared_us=?,"
            " updated_us=? WHERE alarm_id=?", [(str(state), ts, ts, record.alarm_id)])


def split_sql(script: str) -> list[str]:
    """Split a migration script into statements (complete per sqlite3.complete_statement)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


def component_version(component: str, version: int) -> Statement:
    """Record that ``component``'s own schema is at ``version`` (``component_schema``)."""
    return (
        "INSERT INTO component_schema(component, version) VALUES (?, ?) "
        "ON CONFLICT(component) DO UPDATE SET version=excluded.version",
        [(component, version)],
    )

