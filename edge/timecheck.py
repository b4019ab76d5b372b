"""Gateway clock-jump detection, and flagging of the records stamped while the clock was wrong.

Every record carries the gateway's wall-clock time (UTC, offset-aware); indicator periods and the
platform's timeliness checks depend on it. Two independent checks:

* **Step** (``check_local``, every ``interval_s``): the wall clock and the monotonic clock must
  advance alike. If, between two checks, the wall clock moved more than ``step_tolerance_s``
  more (or less) than the monotonic clock, the wall clock was stepped (NTP step, an RTC reset
  after power loss, someone running ``date -s``).
* **Offset** (``observe_date``, called by the uplink with each response's ``Date`` header): the
  platform's clock is the reference. ``Date`` has a resolution of one second and is stamped
  before the response travels back, so the gateway is judged off only when
  ``|local - platform| > platform_tolerance_s + 1 s + rtt_allowance_s``. While it is off the
  check is *suspect*; it recovers at the first observation within tolerance.

What is flagged: records are found by id, not by timestamp (their timestamps are the thing in
doubt). At each check a fresh ULID is minted as a watermark; ids are monotonic in acceptance order,
so "accepted between two checks" is an id range. On a step, the range since the previous check is
flagged; while suspect, every range until recovery is. Flagging means: telemetry quality
``good`` -> ``uncertain``; events and alarm steps get ``data.clock_suspect = true``; and one
``gateway.clock_jump`` event (uploaded like any event) states the source, the offset, the time
window and the id range, so the platform can also judge records it received before the flag.
The flag is written by the store (``Store.records.flag_clock_suspect``, whose docstring argues why it
may touch records already uploaded: it changes a flag, never an id, a time or a value).

``observe_date`` is synchronous (the uplink calls it inline); the store writes happen in the
``run`` task (or ``flush`` in tests). Failure modes: an unparseable ``Date`` is ignored and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from edge.clock import Clock, SystemClock, iso_z, utc
from edge.ids import new_id
from edge.messages import say
from edge.records import Event, Severity
from edge.store import Store
from edge.tasks import cancel_and_wait

log = logging.getLogger(__name__)

JUMP_EVENT = "gateway.clock_jump"
RECOVERED_EVENT = "gateway.clock_ok"


_IMF_FIXDATE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")


def parse_http_date(header: str) -> datetime | None:
    """An HTTP ``Date`` (RFC 9110 IMF-fixdate) as an aware UTC datetime, or None if unreadable.

    A response can carry two Date headers (the application's and the server's); HTTP clients join
    them with ", ", so the first IMF-fixdate in the value is taken.
    """
    match = _IMF_FIXDATE.search(header or "")
    try:
        parsed = parsedate_to_datetime(match.group(0) if match else header)
    except (TypeError, ValueError, IndexError):
        return None
    return utc(parsed) if parsed.tzinfo is not None else None


@dataclass(frozen=True, slots=True)
class ClockJump:
    """One detection: ``offset_s`` is how far the gateway clock is (step: moved) ahead of the truth."""

    source: str  # "monotonic" (a step between two checks) or "platform" (Date header offset)
    offset_s: float
    detected_at: datetime
    window_start: datetime  # gateway wall time of the previous check (old time base for a step)
    window_end: datetime
    first_id: str  # exclusive lower bound of the affected record ids
    last_id: str  # inclusive upper bound


@dataclass(slots=True)
class _Mark:
    wall: datetime
    mono: float
    id: str


@dataclass
class ClockCheck:
    store: Store | None
    clock: Clock = field(default_factory=SystemClock)
    step_tolerance_s: float = 2.0
    platform_tolerance_s: float = 30.0
    rtt_allowance_s: float = 2.0
    interval_s: float = 10.0

    def __post_init__(self) -> None:
        self._last = self._mark()
        self._queue: asyncio.Queue[tuple[ClockJump, str]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.suspect = False
        self.offset_s: float | None = None  # last measured local - platform, seconds
        self.jumps: list[ClockJump] = []
        self.bad_headers = 0
        self.flagged = {"telemetry": 0, "event": 0, "alarm": 0}

    def _mark(self) -> _Mark:
        return _Mark(utc(self.clock.now()), self.clock.monotonic(), new_id())

    # ------------------------------------------------------------------ detection (sync)

    def check_local(self) -> ClockJump | None:
        """Compare wall and monotonic progress since the last check; flag the window if they differ."""
        now = self._mark()
        prev, self._last = self._last, now
        drift = (now.wall - prev.wall).total_seconds() - (now.mono - prev.mono)
        if abs(drift) > self.step_tolerance_s:
            jump = ClockJump("monotonic", drift, now.wall, prev.wall, now.wall, prev.id, now.id)
            self._detected(jump)
            return jump
        if self.suspect:  # still off against the platform: keep flagging what arrives
            self._queue.put_nowait((ClockJump("platform", self.offset_s or 0.0, now.wall, prev.wall, now.wall,
                                              prev.id, now.id), "continuing"))
        return None

    def observe_date(self, header: str) -> ClockJump | None:
        """The uplink's hook: judge the gateway clock against a platform response's ``Date`` header."""
        platform_now = parse_http_date(header)
        if platform_now is None:
            self.bad_headers += 1
            return None
        now = self._mark()
        prev, self._last = self._last, now
        offset = (now.wall - platform_now).total_seconds()
        self.offset_s = offset
        limit = self.platform_tolerance_s + 1.0 + self.rtt_allowance_s
        if abs(offset) > limit:
            jump = ClockJump("platform", offset, now.wall, prev.wall, now.wall, prev.id, now.id)
            if not self.suspect:
                self.suspect = True
                self._detected(jump)
                return jump
            self._queue.put_nowait((jump, "continuing"))
            return None
        if self.suspect:
            self.suspect = False
            # The records since the previous observation may still carry the wrong time.
            self._queue.put_nowait((ClockJump("platform", offset, now.wall, prev.wall, now.wall, prev.id, now.id),
                                    "recovered"))
            log.warning("gateway clock back within %.0f s of the platform (offset %.1f s)", limit, offset)
        return None

    def _detected(self, jump: ClockJump) -> None:
        self.jumps.append(jump)
        log.error("gateway clock %s: %+.1f s (records %s..%s flagged)",
                  "stepped" if jump.source == "monotonic" else "differs from the platform",
                  jump.offset_s, jump.first_id, jump.last_id)
        self._queue.put_nowait((jump, "detected"))

    # ------------------------------------------------------------------ flagging (async)

    async def flush(self) -> int:
        """Apply every queued flag to the store now. Returns the number of windows processed."""
        done = 0
        while not self._queue.empty():
            jump, kind = self._queue.get_nowait()
            await self._flag(jump, kind)
            done += 1
        return done

    async def _flag(self, jump: ClockJump, kind: str) -> None:
        """Flag the records of one window; the first window of a detection and a recovery also get an event."""
        if self.store is None:
            return
        counts = await self.store.records.flag_clock_suspect(jump.first_id, jump.last_id)
        for lane, n in counts.items():
            self.flagged[lane] += n
        if kind != "continuing":
            await self.store.append_events([self._event(jump, counts, recovered=kind == "recovered")])

    def _event(self, jump: ClockJump, counts: dict[str, int], *, recovered: bool) -> Event:
        data: dict[str, Any] = {
            "source": jump.source,
            "offset_s": round(jump.offset_s, 3),
            "window_start": iso_z(jump.window_start),
            "window_end": iso_z(jump.window_end),
            "first_id_exclusive": jump.first_id,
            "last_id": jump.last_id,
            "flagged": counts,
        }
        if recovered:
            return Event(RECOVERED_EVENT, jump.detected_at, None, Severity.INFO, data=data,
                         **say(RECOVERED_EVENT, offset_s=round(jump.offset_s, 1)))
        text = say("gateway.clock_stepped" if jump.source == "monotonic" else "gateway.clock_differs",
                   offset_s=round(jump.offset_s, 1))
        return Event(JUMP_EVENT, jump.detected_at, None, Severity.WARNING, data=data, **text)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> ClockCheck:
        self._task = asyncio.create_task(self.run(), name="timecheck")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        with contextlib.suppress(Exception):
            await self.flush()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.check_local()
                await self.flush()
            except Exception:
                log.exception("clock check failed")
