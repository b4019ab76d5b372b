"""Runs every source as a named task; a crash restarts that source alone, with backoff.

Why a hand-written supervisor and not one ``TaskGroup``: a TaskGroup cancels all its tasks when
one fails, which is exactly wrong for a gateway (one dead RS-485 converter must not stop the
cameras). Each source instead gets its own restart loop:

    run -> crashed -> wait (1 s, 2 s, 4 s ... capped, reset after a stable minute) -> run ...

``reconcile`` applies a new configuration: sources whose name and fingerprint are unchanged keep
running untouched; removed ones stop; new or changed ones (re)start.

Stopping is bounded by what each source does, not by whether it heard the stop: a source still
running ``stop_grace_s`` after its cancellation is named in the log and cancelled again, until it
ends. A library may spend the cancellation meant for us (asyncua's clean-up, ``asyncio.wait_for``
on Python 3.11 when a wake-up meets the stop); the first stop is then lost, and without a second one
the daemon's shutdown or a reload would wait for ever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from edge.backoff import Backoff
from edge.clock import Clock, SystemClock
from edge.sources import Sink, Source

log = logging.getLogger(__name__)

STABLE_AFTER_S = 60.0
STOP_GRACE_S = 10.0  # a source's clean-up (closing a stream, a session) ends well within this


@dataclass(slots=True)
class SourceStatus:
    name: str
    fingerprint: str
    state: str = "starting"  # running | backoff | stopped
    restarts: int = 0
    last_error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    source: Source | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, sink: Sink, *, restart_initial_s: float = 1.0, restart_max_s: float = 60.0,
                 clock: Clock | None = None, stop_grace_s: float = STOP_GRACE_S) -> None:
        self.sink = sink
        self.restart_initial_s = restart_initial_s
        self.restart_max_s = restart_max_s
        self.stop_grace_s = stop_grace_s
        self.clock = clock or SystemClock()
        self.sources: dict[str, SourceStatus] = {}

    async def __aenter__(self) -> Supervisor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_all()

    def start(self, source: Source) -> None:
        if source.name in self.sources:
            raise ValueError(f"source {source.name!r} is already running")
        status = SourceStatus(source.name, source.fingerprint, source=source)
        status.task = asyncio.create_task(self._keep_running(source, status), name=f"source:{source.name}")
        self.sources[source.name] = status

    async def stop(self, name: str) -> None:
        status = self.sources.pop(name, None)
        if status is None or status.task is None:
            return
        await self._cancel_until_stopped([status.task])
        status.state = "stopped"

    async def stop_all(self) -> None:
        statuses = [self.sources.pop(name) for name in list(self.sources)]
        await self._cancel_until_stopped([s.task for s in statuses if s.task is not None])

    async def _cancel_until_stopped(self, tasks: list[asyncio.Task[None]]) -> None:
        """Cancel ``tasks`` and wait until each has ended, cancelling again any that outlives the grace."""
        for task in tasks:
            task.cancel()
        pending = set(tasks)
        waited = 0.0
        while pending:
            _, pending = await asyncio.wait(pending, timeout=self.stop_grace_s)
            waited += self.stop_grace_s
            for task in pending:
                log.warning("source %s still running %.1f s after it was stopped (its stop was lost): "
                            "cancelling it again", task.get_name().removeprefix("source:"), waited)
                task.cancel()
        for task in tasks:
            if not task.cancelled():
                task.result()  # what a source's task ends with besides a cancellation is not hidden

    async def reconcile(self, sources: Sequence[Source]) -> dict[str, list[str]]:
        """Bring the running set in line with ``sources``; report what changed."""
        wanted = {s.name: s for s in sources}
        changes: dict[str, list[str]] = {"started": [], "restarted": [], "stopped": [], "unchanged": []}
        for name in list(self.sources):
            if name not in wanted:
                await self.stop(name)
                changes["stopped"].append(name)
        for name, source in wanted.items():
            current = self.sources.get(name)
            if current is None:
                self.start(source)
                changes["started"].append(name)
            elif current.fingerprint != source.fingerprint:
                await self.stop(name)
                self.start(source)
                changes["restarted"].append(name)
            else:
                changes["unchanged"].append(name)
        return changes

    async def _keep_running(self, source: Source, status: SourceStatus) -> None:
        backoff = Backoff(self.restart_initial_s, self.restart_max_s)  # no jitter: crashes are not a herd
        while True:
            started = self.clock.monotonic()
            status.state = "running"
            try:
                await source.run(self.sink)
                status.last_error = "returned unexpectedly"
                log.warning("source %s returned; restarting", source.name)
            except asyncio.CancelledError:
                status.state = "stopped"
                raise
            except Exception as exc:
                status.last_error = f"{type(exc).__name__}: {exc}"
                log.error("source %s crashed: %s", source.name, status.last_error,
                          exc_info=log.isEnabledFor(logging.DEBUG))
            if self.clock.monotonic() - started > STABLE_AFTER_S:
                backoff.reset()
            status.restarts += 1
            status.state = "backoff"
            await asyncio.sleep(backoff.next_delay())
