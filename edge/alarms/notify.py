"""Pushing alarm steps to staff: the notifier interface, what a notification carries, and delivery.

A ``Notifier`` sends one ``Notification`` and raises ``NotifyError`` when it could not. Delivery
(``NotifierWorker``, one per notifier) is where the policy lives, so that every notifier behaves
alike and a dead one never delays the others or the pipeline:

* **Filter**: a notifier only gets the steps, severities, codes and escalation levels its config asks for.
* **Back-pressure**: ``AlarmManager.apply`` never waits for a network call. Each worker has a bounded
  queue (``alarms.queue_max``); when it is full the *oldest* waiting notification is dropped and
  counted (``dropped``): during an alarm storm the newest state matters most, and the alarm itself is
  safe in the store and on its way upstream regardless.
* **Rate limit**: at most ``max_per_minute`` sends per minute (WeCom and DingTalk robots refuse more
  than 20 a minute); the worker waits rather than being refused.
* **Retry**: ``attempts`` tries with exponential backoff (1 s, 2 s, 4 s ... at most 30 s); then the
  notification is given up, logged and counted (``failed``).

Message text for the robot formats is Chinese (the staff's language) and uses the estate's local time.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Protocol

from edge.backoff import Backoff
from edge.clock import to_us
from edge.messages import term
from edge.records import AlarmRecord, AlarmState, Severity
from edge.store.codec import iso
from edge.tasks import cancel_and_wait, wait_event

if TYPE_CHECKING:
    from edge.config.alarms import NotifierConfig

log = logging.getLogger(__name__)

SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.MAJOR: 2, Severity.CRITICAL: 3}
STEP_LABELS_ZH = {
    AlarmState.RAISED: "告警",
    AlarmState.ACKNOWLEDGED: "已确认",
    AlarmState.ESCALATED: "告警升级",
    AlarmState.RESOLVED: "已处置",
    AlarmState.CLEARED: "已恢复",
}
SEVERITY_LABELS_ZH = {
    Severity.INFO: "提示", Severity.WARNING: "一般", Severity.MAJOR: "重要", Severity.CRITICAL: "紧急",
}


class NotifyError(Exception):
    """A notifier could not deliver; ``retry`` False means trying again will not help (e.g. bad key)."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True, slots=True)
class Notification:
    """One alarm step, with what a person needs to act on it without opening the panel."""

    record: AlarmRecord
    estate_id: str
    estate_name: str
    gateway_id: str
    device_name: str | None = None
    location: str | None = None
    level: int = 0  # escalation level of an 'escalated' step (1, 2, ...), else 0
    tz: tzinfo | None = None

    @property
    def step(self) -> AlarmState:
        return self.record.state

    def local_time(self) -> str:
        ts = self.record.ts.astimezone(self.tz) if self.tz else self.record.ts
        return ts.strftime("%Y-%m-%d %H:%M:%S")

    def payload(self) -> dict[str, Any]:
        """The JSON body of the webhook and MQTT notifiers: the alarm upload payload plus context."""
        r = self.record
        return {
            "estate_id": self.estate_id,
            "estate_name": self.estate_name,
            "gateway_id": self.gateway_id,
            "step": str(r.state),
            "level": self.level,
            "alarm": {
                "id": r.id, "alarm_id": r.alarm_id, "code": r.code, "state": str(r.state), "ts": iso(to_us(r.ts)),
                "device_id": r.device_id, "severity": str(r.severity), "actor": r.actor, "message": r.message,
                "message_code": r.message_code or r.code, "params": r.params, "note": r.note, "data": r.data,
            },
            "device": {"id": r.device_id, "name": self.device_name, "location": self.location},
        }

    def title(self) -> str:
        label = STEP_LABELS_ZH[self.step]
        if self.step is AlarmState.ESCALATED:
            label = f"{label}(第{self.level}级)"
        subject = self.device_name or self.record.device_id or self.record.data.get("subject") or ""
        return f"【{label}】{self.estate_name} {subject} {term('code', self.record.code)}".strip()

    def lines(self) -> list[str]:
        r = self.record
        out = [
            f"级别: {SEVERITY_LABELS_ZH[r.severity]} ({r.severity})",
            f"告警: {term('code', r.code)}",
            f"内容: {r.message}" if r.message else "",
            f"设备: {self.device_name or r.device_id or '-'}" + (f" ({r.device_id})" if self.device_name else ""),
            f"位置: {self.location}" if self.location else "",
            f"时间: {self.local_time()}",
        ]
        if r.state in (AlarmState.ACKNOWLEDGED, AlarmState.RESOLVED):
            out.append(f"处理人: {r.actor}")
        if r.note:
            out.append(f"处置说明: {r.note}")
        if r.state is AlarmState.ESCALATED:
            minutes = r.data.get("unacknowledged_min")
            out.append(f"已 {minutes:.0f} 分钟未确认" if isinstance(minutes, int | float) else "超时未确认")
        out.append(f"告警编号: {r.alarm_id}")
        return [line for line in out if line]


class Notifier(Protocol):
    """Sends one notification; raises ``NotifyError``. ``close`` releases connections."""

    name: str

    async def send(self, notification: Notification) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class NotifyFilter:
    steps: frozenset[str]
    min_severity: Severity = Severity.WARNING
    min_escalation_level: int = 1
    codes: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, cfg: NotifierConfig) -> NotifyFilter:
        return cls(frozenset(cfg.steps), Severity(cfg.min_severity), cfg.min_escalation_level, tuple(cfg.codes))

    def wants(self, n: Notification) -> bool:
        r = n.record
        if str(r.state) not in self.steps:
            return False
        if SEVERITY_RANK[r.severity] < SEVERITY_RANK[self.min_severity]:
            return False
        if r.state is AlarmState.ESCALATED and n.level < self.min_escalation_level:
            return False
        return not self.codes or any(r.code.startswith(prefix) for prefix in self.codes)


class RateLimiter:
    """At most ``per_minute`` events in any 60 s window (sliding log; the numbers here are small)."""

    def __init__(self, per_minute: int, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._sent: collections.deque[float] = collections.deque()
        self._monotonic = monotonic

    def delay(self) -> float:
        """Seconds to wait before the next send is allowed (0 when it may go now)."""
        now = self._monotonic()
        while self._sent and now - self._sent[0] >= 60.0:
            self._sent.popleft()
        if len(self._sent) < self.per_minute:
            return 0.0
        return 60.0 - (now - self._sent[0])

    def record(self) -> None:
        self._sent.append(self._monotonic())


@dataclass
class NotifierStats:
    queued: int = 0
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    retries: int = 0
    last_error: str | None = None


@dataclass
class NotifierWorker:
    """Delivers to one notifier from its own bounded queue (see the module docstring for the policy)."""

    notifier: Notifier
    filter: NotifyFilter
    attempts: int = 3
    max_per_minute: int = 20
    queue_max: int = 1000
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    stats: NotifierStats = field(default_factory=NotifierStats)

    def __post_init__(self) -> None:
        self._queue: collections.deque[Notification] = collections.deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._limiter = RateLimiter(self.max_per_minute)
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.notifier.name

    def offer(self, notification: Notification) -> bool:
        """Queue ``notification`` if this notifier wants it. Never blocks; drops the oldest when full."""
        if not self.filter.wants(notification):
            return False
        if len(self._queue) >= self.queue_max:
            dropped = self._queue.popleft()
            self.stats.dropped += 1
            log.warning("notifier %s: queue full (%d), dropped the oldest notification (alarm %s %s)",
                        self.name, self.queue_max, dropped.record.alarm_id, dropped.record.state)
        self._queue.append(notification)
        self.stats.queued += 1
        self._idle.clear()
        self._wakeup.set()
        return True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"notifier:{self.name}")

    async def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Give queued notifications ``flush_timeout_s`` to go out, then stop and close the notifier."""
        if self._task is not None:
            await wait_event(self._idle, flush_timeout_s)
            await cancel_and_wait(self._task)
            self._task = None
        try:
            await self.notifier.close()
        except Exception:
            log.exception("notifier %s: close failed", self.name)

    async def drain(self) -> None:
        """Wait until everything queued so far was sent or given up (for tests and shutdown)."""
        await self._idle.wait()

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            notification = self._queue.popleft()
            await self._deliver(notification)

    async def _deliver(self, notification: Notification) -> None:
        backoff = Backoff(self.backoff_initial_s, self.backoff_max_s)
        for attempt in range(1, self.attempts + 1):
            wait = self._limiter.delay()
            if wait > 0:
                await asyncio.sleep(wait)
            self._limiter.record()
            try:
                await self.notifier.send(notification)
            except NotifyError as exc:
                self.stats.last_error = str(exc)
                if not exc.retry or attempt == self.attempts:
                    self.stats.failed += 1
                    log.error("notifier %s: gave up on alarm %s (%s) after %d attempt(s): %s", self.name,
                              notification.record.alarm_id, notification.record.state, attempt, exc)
                    return
                self.stats.retries += 1
                delay = backoff.next_delay()
                log.warning("notifier %s: attempt %d failed (%s); retrying in %.1f s", self.name, attempt, exc, delay)
                await asyncio.sleep(delay)
            except Exception as exc:  # a notifier bug must not kill the worker
                self.stats.failed += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("notifier %s: unexpected error", self.name)
                return
            else:
                self.stats.sent += 1
                return
