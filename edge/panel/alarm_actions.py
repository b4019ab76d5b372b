"""How the panel acknowledges and resolves alarms: through the alarm manager when there is one.

The panel depends only on the ``AlarmActions`` protocol. The daemon passes its ``AlarmManager``
(``edge.alarms.AlarmManager``: it keeps its open-alarm view and escalations in step, notifies, and
writes the disposal steps); ``StoreAlarmActions`` is the
fallback used when the panel runs without one (tools, the benchmark): it writes the same
``AlarmRecord`` steps straight into the store, so the alarm lane still uploads the closed loop.

Rules both follow (seed 002 5.2.1.2 d)-e): the closed loop is recognise -> alarm -> dispose):
- acknowledge: only an alarm that is raised or escalated and not yet acknowledged;
- resolve: any alarm not yet resolved, including one whose condition cleared by itself (staff still
  record what they did); a note is required.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Protocol

from edge.clock import Clock
from edge.errors import EdgeError
from edge.records import AlarmRecord, AlarmState, Severity
from edge.store import Store
from edge.store.alarm_queries import AlarmStatus


class AlarmActionError(Exception):
    """The action was refused. ``code`` is an i18n key; ``status`` the HTTP status to answer with."""

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class AlarmActions(Protocol):
    # The result (the AlarmManager's new AlarmRecord) is not used: the panel re-reads the store.
    async def acknowledge(self, alarm_id: str, user: str, note: str) -> object: ...

    async def resolve(self, alarm_id: str, user: str, note: str) -> object: ...


NOTE_MAX = 2000


def check_note(note: str, *, required: bool) -> str:
    note = note.strip()
    if required and not note:
        raise AlarmActionError("alarm.note_missing", "a note is required to resolve an alarm", 422)
    if len(note) > NOTE_MAX:
        raise AlarmActionError("alarm.note_too_long", f"notes are at most {NOTE_MAX} characters", 422)
    return note


async def load_state(store: Store, alarm_id: str) -> AlarmStatus:
    row = await store.alarms.status(alarm_id)
    if row is None:
        raise AlarmActionError("alarm.not_found", f"no alarm {alarm_id!r}", 404)
    return row


def check_transition(row: AlarmStatus, action: str) -> None:
    state, acked_us, resolved_us = row.state, row.acked_us, row.resolved_us
    if resolved_us is not None or state == AlarmState.RESOLVED:
        raise AlarmActionError("alarm.already_resolved", "the alarm is already resolved")
    if action == "acknowledge" and (acked_us is not None or state not in (AlarmState.RAISED, AlarmState.ESCALATED)):
        raise AlarmActionError("alarm.not_ackable", f"an alarm in state {state!r} can not be acknowledged")


class StoreAlarmActions:
    """Fallback: write the disposal steps into the store directly (no notifications)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def acknowledge(self, alarm_id: str, user: str, note: str) -> None:
        await self._step(alarm_id, user, note, AlarmState.ACKNOWLEDGED, "acknowledge")

    async def resolve(self, alarm_id: str, user: str, note: str) -> None:
        await self._step(alarm_id, user, note, AlarmState.RESOLVED, "resolve")

    async def _step(self, alarm_id: str, user: str, note: str, state: AlarmState, action: str) -> None:
        row = await load_state(self.store, alarm_id)
        check_transition(row, action)
        await self.store.append_alarm_records([AlarmRecord(
            alarm_id=alarm_id, code=row.code, state=state, ts=self.clock.now(), device_id=row.device_id,
            severity=Severity(row.severity), actor=user, note=note, data=json.loads(row.data),
        )])


class CheckedAlarmActions:
    """Wraps any ``AlarmActions`` with the panel's own checks, so every backend answers alike.

    The checks run first against the store (404 for an unknown alarm, 409 for a step that does not
    apply), then the backend does the step. Backend exceptions with a ``code``/``status`` pass
    through as ``AlarmActionError``.
    """

    def __init__(self, backend: AlarmActions, store: Store) -> None:
        self.backend = backend
        self.store = store

    async def acknowledge(self, alarm_id: str, user: str, note: str) -> None:
        note = check_note(note, required=False)
        check_transition(await load_state(self.store, alarm_id), "acknowledge")
        await self._call(self.backend.acknowledge, alarm_id, user, note)

    async def resolve(self, alarm_id: str, user: str, note: str) -> None:
        note = check_note(note, required=True)
        check_transition(await load_state(self.store, alarm_id), "resolve")
        await self._call(self.backend.resolve, alarm_id, user, note)

    @staticmethod
    async def _call(fn: Callable[[str, str, str], Awaitable[object]], alarm_id: str, user: str, note: str) -> None:
        try:
            await fn(alarm_id, user, note)
        except AlarmActionError:
            raise
        except (LookupError, ValueError, EdgeError) as exc:
            # edge.alarms' errors carry an i18n ``code`` and an HTTP ``status``; others get sensible ones.
            status = getattr(exc, "status", 404 if isinstance(exc, LookupError) else 409)
            code = getattr(exc, "code", "alarm.not_found" if status == 404 else "alarm.refused")
            raise AlarmActionError(str(code), str(exc), int(status)) from exc
