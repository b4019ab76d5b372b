"""The store's own health as a source: disk-full mode in and out becomes ``store.disk_full`` events.

Why a source: alarms are raised by the rule engine from what sources deliver, never written by
the store behind the pipeline's back (data flows one way). The store only records that it entered
or left disk-full mode (``Store.disk`` and ``Store.disk_changed``); this task turns each change into
an event with ``data.active`` true or false, which the rule engine maps to the ``store.disk_full``
alarm (raised once, cleared once), so it reaches the panel, the notifiers and the platform like
any other alarm.

The first report of a run also looks at the alarms the store kept: a daemon stopped in disk-full
mode and started again after someone freed the disk (the usual way out: clean up, reboot) finds no
change to report in this run, yet the alarm it left open must clear.
"""

from __future__ import annotations

from edge.clock import iso_z
from edge.messages import say
from edge.records import Event, Severity
from edge.sources import Sink
from edge.store.store import Store

DISK_FULL = "store.disk_full"


class StoreHealthSource:
    """Watches one store; supervised like every other source (restarted if it ever fails)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._reported: bool | None = None

    @property
    def name(self) -> str:
        return "store:health"

    @property
    def fingerprint(self) -> str:
        return "store-health-1"

    async def run(self, sink: Sink) -> None:
        while True:
            self.store.disk_changed.clear()
            await self._report(sink)
            await self.store.disk_changed.wait()

    async def _report(self, sink: Sink) -> None:
        disk = self.store.disk
        if disk.full == self._reported or (self._reported is None and not disk.full
                                           and not await self._left_open()):
            self._reported = disk.full
            return
        now = self.store.clock.now()
        if disk.full:
            event = Event(DISK_FULL, now, None, Severity.CRITICAL,
                          data={"active": True, "store": "local", "reason": disk.reason,
                                "since": iso_z(disk.since) if disk.since else None},
                          **say(DISK_FULL))
        else:
            event = Event(DISK_FULL, now, None, Severity.INFO,
                          data={"active": False, "store": "local", "telemetry_paused": disk.telemetry_paused},
                          **say("store.disk_full_cleared"))
        await sink.events([event])
        self._reported = disk.full

    async def _left_open(self) -> bool:
        """Whether an earlier run left the disk-full alarm open."""
        return any(alarm.code == DISK_FULL for alarm in await self.store.open_alarms())
