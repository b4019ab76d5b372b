"""Runs every source as a named task; a crash restarts that source alone, with backoff.

Why a hand-written supervisor and not one ``TaskGroup``: a TaskGroup cancels all its tasks when
one fails, which is exactly wrong for a gateway (one dead RS-485 converter must not stop the
cameras). Each source instead gets its own restart loop:

    run -> crashed -> wait (1 s, 2 s, 4 s ... capped, reset after a stable minute) -> run ...

``reconcile`` applies a new configuration: sources whose name and fingerprint are unchanged keep
running untouched; removed ones stop; new or changed ones (re)start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from edge.backoff import Backoff
from edge.clock import Clock, SystemClock
from edge.sources import Sink, Source
from edge.tasks import cancel_and_wait

log = logging.getLogger(__name__)

STABLE_AFTER_S = 60.0


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
                 clock: Clock | None = None) -> None:
        self.sink = sink
        self.restart_initial_s = restart_initial_s
        self.restart_max_s = restart_max_s
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
        await cancel_and_wait(status.task)
        status.state = "stopped"

    async def stop_all(self) -> None:
        names = list(self.sources)
        for name in names:
            task = self.sources[name].task
            if task is not None:
                task.cancel()
        for name in names:
            status = self.sources.pop(name)
            if status.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await status.task

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
