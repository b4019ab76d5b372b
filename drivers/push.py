"""The hand-over of a push source (BLE, OPC-UA): what arrived since the last delivery, and the one task that hands it to the sink.

Why: a push source learns of values in callbacks (an advertisement, a data-change notification) that
must not wait for the store's commit; they append to ``pending`` and call ``wake``. One delivery task
then calls the sink with everything gathered: device statuses first (they drive the offline alarms),
then the readings in one ``sink.readings`` call, so a burst costs one commit. A sink that refuses a
delivery is logged and counted (``sink_errors``); the records of that delivery are dropped, the
source keeps running. (The MQTT source has its own: it acknowledges each message to the broker only
after the commit, see ``drivers.mqtt.driver``.)
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from edge.records import DeviceStatus, Reading
from edge.sources import Sink

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Gathered:
    """What waits for the next delivery."""

    readings: list[Reading] = field(default_factory=list)
    statuses: list[DeviceStatus] = field(default_factory=list)


class PushDelivery:
    """``pending`` gathers, ``run`` delivers until cancelled, ``flush`` delivers what is left at a stop."""

    def __init__(self, name: str) -> None:
        self.name = name  # the source's, for the log lines
        self.pending = Gathered()
        self.sink_errors = 0
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something was added to ``pending``: deliver it soon."""
        self._wake.set()

    async def run(self, sink: Sink) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.deliver(sink)

    async def deliver(self, sink: Sink) -> None:
        pending, self.pending = self.pending, Gathered()
        try:
            for status in pending.statuses:
                await sink.device_status(status)
            if pending.readings:
                await sink.readings(pending.readings)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.sink_errors += 1
            log.exception("%s: the sink refused %d readings", self.name, len(pending.readings))

    async def flush(self, sink: Sink, timeout_s: float = 1.0) -> None:
        """At a stop: deliver what is pending, within ``timeout_s``; what is left is logged."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.deliver(sink)
        except (TimeoutError, Exception):
            log.warning("%s: %d readings not delivered at shutdown", self.name, len(self.pending.readings))
