r"""The alarm lifecycle: raise, acknowledge, escalate, resolve, clear, each step a stored record.

    rule engine --transitions--> AlarmManager.apply --AlarmRecords--> store (alarm lane -> platform)
    panel staff --acknowledge / resolve--^        \--> notifier workers (webhook, MQTT, WeCom, DingTalk)
    escalation task (every check_interval_s) --^

Lifecycle of one alarm (``AlarmState``), every arrow one immutable ``AlarmRecord`` with who and when:

    raised --(staff)--> acknowledged --(staff, note)--> resolved          (disposal record)
       |  \--(not acknowledged within escalate_after_min[i])--> escalated (level i+1)
       \--(condition gone, rule engine)--> cleared    (staff may still resolve it with a note)

Rules (shared with the panel's checks, ``edge.panel.alarm_actions``):

* **No duplicates** (GB/T 20299.3 draft 8.1.8): at most one open alarm per key ``(code, subject,
  point)``; a raise for an open key is counted (``duplicates``) and dropped, a clear for a key
  that is not open is counted (``stray_clears``) and dropped.
* acknowledge: only an alarm that is raised or escalated and not yet acknowledged.
* resolve: any alarm not yet resolved, including one that cleared by itself; a note is required
  and the actor must be a person (not ``system``). Resolving an alarm whose condition persists
  closes it; the rule engine raises a new one only after the condition clears and recurs.
* escalation: an open, unacknowledged alarm is escalated to level ``n`` once it has been raised
  ``escalate_after_min[n-1]`` minutes; levels are never repeated, also across restarts.

The manager's in-memory view (open keys, escalation levels) is rebuilt from the store by
``restore()``, so a restart neither repeats a raise nor re-escalates. State changes are written
first and applied in memory only after the store committed them: a failed write leaves the view
as it was. Notifications are queued after the commit and never block ``apply``.

Time: steps from transitions carry the transition's own timestamp (the reading's); staff actions
and escalations are stamped with the injected clock, so a time-accelerated day behaves like a real one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from edge.alarms.notify import Notification, NotifierWorker, NotifyFilter
from edge.clock import Clock, SystemClock, from_us
from edge.config.alarms import AlarmsConfig
from edge.errors import EdgeError
from edge.ids import new_id
from edge.messages import say
from edge.records import AlarmRecord, AlarmState, Severity
from edge.store import Store
from edge.store.alarm_queries import AlarmStatus
from edge.tasks import cancel_and_wait
from edge.transitions import AlarmKey, AlarmTransition, alarm_key

if TYPE_CHECKING:
    from edge.config import EstateConfig
    from edge.config.cameras import CameraConfig
    from edge.config.devices import DeviceConfig

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
NOTE_MAX = 2000


class AlarmError(EdgeError):
    """A staff action on an alarm was refused. ``code`` is an i18n key, ``status`` an HTTP status."""

    code = "alarm.refused"
    status = 409

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code


class AlarmNotFound(AlarmError, KeyError):
    code = "alarm.not_found"
    status = 404

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class AlarmStateError(AlarmError, ValueError):
    """The step does not apply to the alarm's current state (already resolved, not acknowledgeable ...)."""


@dataclass(slots=True)
class _Open:
    alarm_id: str
    key: AlarmKey
    code: str
    device_id: str | None
    severity: Severity
    raised_at: datetime
    message: str
    data: dict[str, Any]
    acked: bool = False
    level: int = 0


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    name: str | None  # a camera may have none
    location: str


@dataclass
class AlarmContext:
    """What notifications say about the estate and its devices (from the estate config)."""

    estate_id: str = ""
    estate_name: str = ""
    gateway_id: str = ""
    tz: tzinfo | None = None
    devices: dict[str, DeviceInfo] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: EstateConfig) -> AlarmContext:
        devices: dict[str, DeviceInfo] = {}
        items: list[DeviceConfig | CameraConfig] = [*config.devices, *config.cameras]
        for item in items:
            loc = item.location
            where = " ".join(p for p in (loc.building, loc.unit, loc.floor, loc.room) if p)
            devices[item.id] = DeviceInfo(item.name, where)
        return cls(config.estate.id, config.estate.name, config.estate.gateway_id,
                   ZoneInfo(config.estate.timezone), devices)


class AlarmManager:
    """Implements the pipeline's ``AlarmSink`` and the panel's ``AlarmActions``. Async context manager."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        config: AlarmsConfig | None = None,
        context: AlarmContext | None = None,
        workers: Sequence[NotifierWorker] = (),
    ) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.config = config or AlarmsConfig()
        self.context = context or AlarmContext()
        self.workers = list(workers)
        self._open: dict[str, _Open] = {}
        self._by_key: dict[AlarmKey, str] = {}
        self._lock = asyncio.Lock()
        self._escalation_task: asyncio.Task[None] | None = None
        self._started_escalation = False  # whether start() was asked for the escalation loop
        self.duplicates = 0
        self.stray_clears = 0
        self.escalations = 0

    @classmethod
    def from_config(cls, store: Store, config: EstateConfig, *, clock: Clock | None = None) -> AlarmManager:
        """Build with the notifiers of ``config.alarms`` (an ``EstateConfig``)."""
        return cls(store, clock=clock, config=config.alarms, context=AlarmContext.from_config(config),
                   workers=_notifier_workers(config))

    async def reconfigure(self, config: EstateConfig, flush_timeout_s: float = 5.0) -> list[str]:
        """Take a reloaded ``EstateConfig``; returns what changed.

        Device names and places for notifications, escalation steps and notifiers are replaced; open
        alarms and their escalation levels are kept.

        Changed notifiers are replaced as a whole: the new workers start before the old ones are
        stopped, and the old ones first deliver what they already queued (up to ``flush_timeout_s``).
        """
        new: AlarmsConfig = config.alarms
        changed = []
        self.context = AlarmContext.from_config(config)
        if new.notifiers != self.config.notifiers or new.queue_max != self.config.queue_max:
            old, self.workers = self.workers, _notifier_workers(config)
            for worker in self.workers:
                worker.start()
            await asyncio.gather(*(w.stop(flush_timeout_s) for w in old))
            changed.append("notifiers")
        if (new.escalate_after_min, new.check_interval_s) != (self.config.escalate_after_min, self.config.check_interval_s):
            changed.append("escalation")
        self.config = new
        running = self._escalation_task is not None
        if running and not new.escalate_after_min:
            await self._stop_escalation()
        elif new.escalate_after_min and not running and self._started_escalation:
            self._escalation_task = asyncio.create_task(self._escalation_loop(), name="alarms:escalation")
        return changed

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> AlarmManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, *, escalation_loop: bool = True) -> None:
        """Restore the open alarms, start the notifier workers and (optionally) the escalation task."""
        await self.restore()
        for worker in self.workers:
            worker.start()
        self._started_escalation = escalation_loop
        if escalation_loop and self.config.escalate_after_min and self._escalation_task is None:
            self._escalation_task = asyncio.create_task(self._escalation_loop(), name="alarms:escalation")

    async def stop(self, flush_timeout_s: float = 5.0) -> None:
        await self._stop_escalation()
        await asyncio.gather(*(w.stop(flush_timeout_s) for w in self.workers))

    async def _stop_escalation(self) -> None:
        task, self._escalation_task = self._escalation_task, None
        await cancel_and_wait(task)

    async def drain(self) -> None:
        """Wait until every notification queued so far was delivered or given up."""
        await asyncio.gather(*(w.drain() for w in self.workers))

    async def restore(self) -> int:
        """Rebuild the open alarms (keys, acknowledgement, escalation level) from the store."""
        rows = await self.store.alarms.open_for_restore()
        async with self._lock:
            self._open.clear()
            self._by_key.clear()
            for r in rows:
                details = json.loads(r.data)
                key = alarm_key(r.code, details.get("subject"), details.get("point"), r.device_id)
                if key in self._by_key:  # two open alarms with one key: keep the older, it is the one staff see
                    log.warning("alarms: %s and %s are both open for %s", self._by_key[key], r.alarm_id, key)
                    continue
                self._open[r.alarm_id] = _Open(r.alarm_id, key, r.code, r.device_id, Severity(r.severity),
                                               from_us(r.raised_us), r.message, details, acked=r.acked_us is not None,
                                               level=r.level)
                self._by_key[key] = r.alarm_id
        if rows:
            log.info("alarms: restored %d open alarm(s)", len(self._open))
        return len(self._open)

    # ------------------------------------------------------------------ queries

    def open_alarms(self) -> list[dict[str, Any]]:
        """The open alarms as the manager sees them, with acknowledgement and escalation level, for the panel.

        (The rule engines restore their open set from ``Store.open_alarms``.)
        """
        return [
            {"alarm_id": a.alarm_id, "code": a.code, "device_id": a.device_id, "severity": str(a.severity),
             "raised_at": a.raised_at, "acknowledged": a.acked, "level": a.level, "message": a.message,
             "data": a.data}
            for a in self._open.values()
        ]

    def is_open(self, key: AlarmKey) -> bool:
        return key in self._by_key

    # ------------------------------------------------------------------ rule transitions

    async def apply(self, transitions: Sequence[AlarmTransition]) -> list[AlarmRecord]:
        """Turn rule transitions into alarm steps (see the module docstring). Returns the stored steps."""
        async with self._lock:
            records: list[AlarmRecord] = []
            # Changes of this batch, applied to the view only after the store committed them.
            overlay: dict[AlarmKey, _Open | None] = {}
            closed_ids: list[str] = []
            for t in transitions:
                key = t.key
                current = overlay[key] if key in overlay else self._open.get(self._by_key.get(key, ""))
                message = t.message
                data = {**t.data, "subject": key[1], "point": key[2]}
                if t.is_raise:
                    if current is not None:
                        self.duplicates += 1
                        continue
                    alarm = _Open(new_id(), key, key[0], t.device_id, Severity(t.severity), t.ts, message, data)
                    overlay[key] = alarm
                    records.append(AlarmRecord(
                        alarm_id=alarm.alarm_id, code=alarm.code, state=AlarmState.RAISED, ts=t.ts,
                        device_id=alarm.device_id, severity=alarm.severity, actor=SYSTEM_ACTOR, message=message,
                        data=data, evidence=t.evidence, evidence_local=t.evidence_local,
                        message_code=t.message_code, params=dict(t.params),
                    ))
                else:
                    if current is None:
                        self.stray_clears += 1
                        continue
                    overlay[key] = None
                    closed_ids.append(current.alarm_id)
                    # The clear keeps the alarm's severity, so notifier filters treat both ends alike.
                    records.append(AlarmRecord(
                        alarm_id=current.alarm_id, code=current.code, state=AlarmState.CLEARED, ts=t.ts,
                        device_id=current.device_id, severity=current.severity, actor=SYSTEM_ACTOR,
                        message=message, data=data, message_code=t.message_code, params=dict(t.params),
                    ))
            if not records:
                return []
            ids = await self.store.append_alarm_records(records)
            for alarm_id in closed_ids:
                gone = self._open.pop(alarm_id, None)
                if gone is not None and self._by_key.get(gone.key) == alarm_id:
                    del self._by_key[gone.key]
            for key, opened in overlay.items():
                if opened is not None:
                    self._open[opened.alarm_id] = opened
                    self._by_key[key] = opened.alarm_id
            stored = [replace(r, id=i, evidence=None, evidence_local=None) for r, i in zip(records, ids, strict=True)]
        self._notify(stored)
        return stored

    # ------------------------------------------------------------------ staff actions

    async def acknowledge(self, alarm_id: str, user: str, note: str = "") -> AlarmRecord:
        """Staff saw the alarm and are on it: stops escalation. Refused unless raised/escalated and unacked."""
        user, note = _actor(user), _note(note, required=False)
        async with self._lock:
            row = await self._row(alarm_id)
            if row.resolved_us is not None:
                raise AlarmStateError(f"alarm {alarm_id} is already resolved", "alarm.already_resolved")
            if row.acked_us is not None or row.state not in (AlarmState.RAISED, AlarmState.ESCALATED):
                raise AlarmStateError(f"an alarm in state {row.state!r} can not be acknowledged",
                                      "alarm.not_ackable")
            record = await self._write_step(row, AlarmState.ACKNOWLEDGED, user, note)
            if alarm_id in self._open:
                self._open[alarm_id].acked = True
        self._notify([record])
        return record

    async def resolve(self, alarm_id: str, user: str, note: str) -> AlarmRecord:
        """Staff closed the alarm with a disposal note (the record the platform scores the loop on)."""
        user, note = _actor(user), _note(note, required=True)
        async with self._lock:
            row = await self._row(alarm_id)
            if row.resolved_us is not None:
                raise AlarmStateError(f"alarm {alarm_id} is already resolved", "alarm.already_resolved")
            record = await self._write_step(row, AlarmState.RESOLVED, user, note)
            alarm = self._open.pop(alarm_id, None)
            if alarm is not None:
                self._by_key.pop(alarm.key, None)
        self._notify([record])
        return record

    async def _row(self, alarm_id: str) -> AlarmStatus:
        row = await self.store.alarms.status(alarm_id)
        if row is None:
            raise AlarmNotFound(f"no alarm {alarm_id!r}")
        return row

    async def _write_step(self, row: AlarmStatus, state: AlarmState, actor: str, note: str,
                          data: dict[str, Any] | None = None) -> AlarmRecord:
        record = AlarmRecord(
            alarm_id=row.alarm_id, code=row.code, state=state, ts=self.clock.now(), device_id=row.device_id,
            severity=Severity(row.severity), actor=actor, note=note,
            data=data if data is not None else json.loads(row.data),
            **say("alarm.acknowledged" if state is AlarmState.ACKNOWLEDGED else "alarm.resolved", actor=actor),
        )
        (rid,) = await self.store.append_alarm_records([record])
        return replace(record, id=rid)

    # ------------------------------------------------------------------ escalation

    async def check_escalations(self) -> list[AlarmRecord]:
        """Escalate every open, unacknowledged alarm whose next level is due. Returns the new steps."""
        steps = self.config.escalate_after_min
        if not steps:
            return []
        now = self.clock.now()
        async with self._lock:
            due_levels: list[tuple[_Open, int]] = []
            records: list[AlarmRecord] = []
            for alarm in self._open.values():
                if alarm.acked:
                    continue
                minutes = (now - alarm.raised_at).total_seconds() / 60
                due = sum(1 for m in steps if minutes >= m)
                if due <= alarm.level:
                    continue
                due_levels.append((alarm, due))
                records.append(AlarmRecord(
                    alarm_id=alarm.alarm_id, code=alarm.code, state=AlarmState.ESCALATED, ts=now,
                    device_id=alarm.device_id, severity=alarm.severity, actor=SYSTEM_ACTOR,
                    data={**alarm.data, "level": due, "unacknowledged_min": round(minutes, 1),
                          "escalate_after_min": steps[due - 1]},
                    **say("alarm.escalated", what=alarm.message, level=due, minutes=steps[due - 1]),
                ))
            if not records:
                return []
            ids = await self.store.append_alarm_records(records)
            for alarm, due in due_levels:
                alarm.level = due
            self.escalations += len(records)
            out = [replace(r, id=i) for r, i in zip(records, ids, strict=True)]
        self._notify(out)
        return out

    async def _escalation_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.check_interval_s)
            try:
                await self.check_escalations()
            except Exception:
                log.exception("alarms: escalation check failed")

    # ------------------------------------------------------------------ notifications

    def _notify(self, records: Iterable[AlarmRecord]) -> None:
        if not self.workers:
            return
        ctx = self.context
        for record in records:
            info = ctx.devices.get(record.device_id or "")
            level = int(record.data.get("level", 0)) if record.state is AlarmState.ESCALATED else 0
            notification = Notification(
                record, ctx.estate_id, ctx.estate_name, ctx.gateway_id,
                device_name=info.name if info else None, location=info.location if info else None,
                level=level, tz=ctx.tz,
            )
            for worker in self.workers:
                worker.offer(notification)


def _notifier_workers(config: EstateConfig) -> list[NotifierWorker]:
    """One worker per notifier of ``config.alarms`` (an ``EstateConfig``); not started."""
    from edge.alarms.notifiers import build_notifier

    alarms: AlarmsConfig = config.alarms
    return [
        NotifierWorker(build_notifier(n, config.estate.gateway_id), NotifyFilter.from_config(n),
                       attempts=n.attempts, max_per_minute=n.max_per_minute, queue_max=alarms.queue_max)
        for n in alarms.notifiers
    ]


def _actor(user: str) -> str:
    user = (user or "").strip()
    if not user or user == SYSTEM_ACTOR:
        raise AlarmStateError("a staff action needs the name of the person doing it", "alarm.actor_required")
    return user[:64]


def _note(note: str, *, required: bool) -> str:
    note = (note or "").strip()
    if required and not note:
        raise AlarmStateError("a note is required to resolve an alarm", "alarm.note_required")
    if len(note) > NOTE_MAX:
        raise AlarmStateError(f"notes are at most {NOTE_MAX} characters", "alarm.note_too_long")
    return note
