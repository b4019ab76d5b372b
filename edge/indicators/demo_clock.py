"""The demo clock: indicators within the first minutes of a demo, clearly marked as demo figures.

Why: the engine closes hours, days and months (``close_delay_s`` after each ends), so a demo
started at :05 uploads its first indicator at about :02 of the next hour: nobody watching a
five-minute demo sees one. With ``indicators.demo_period_s`` set (the config refuses it unless
``estate.demo: true``, which only ``estate-edge demo`` writes), every that many seconds the engine
also computes **the running hour so far**: the same families over the data folded until now, for
the window ``[hour start, now)``. Nothing is invented: the figures are the engine's own, over a
shorter window, with the engine's honest coverage (the share of the hour the gateway ran).

How they are told apart, upstream and here:

* ``dimensions["demo"] = "running_hour"``: a different key from the hour's real record, which the
  engine still emits when the hour closes; the platform keeps both apart.
* ``period_end`` is the instant of computation, not the hour's end.
* ``version`` counts the demo periods since the hour began (1, 2, 3 ...), so each newer figure of the
  running hour supersedes the older at the platform (which keeps the highest version of a key), also
  across a demo restarted in the same folder.

Failure modes: a tick that fails is logged and the next one tries again; the real periods are not
touched (the engine's bookkeeping of emitted periods ignores demo records).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from edge.indicators.periods import Period
from edge.records import IndicatorRecord

if TYPE_CHECKING:
    from edge.indicators.engine import IndicatorEngine

log = logging.getLogger(__name__)

DEMO_DIMENSION = "demo"
DEMO_RUNNING_HOUR = "running_hour"


def is_demo_key(key: str) -> bool:
    """Whether an indicator key belongs to a demo-clock record (``...|demo=running_hour``)."""
    dims = key.rsplit("|", 1)[-1]
    return f"{DEMO_DIMENSION}={DEMO_RUNNING_HOUR}" in dims.split(",")


async def running_hour(engine: IndicatorEngine, period_s: float, now: datetime | None = None) -> list[IndicatorRecord]:
    """Fold what arrived, compute the running hour so far, store the records marked demo; return them."""
    now = now or engine.clock.now()
    await engine.fold()
    hour = engine.calendar.period_of("hour", now)
    if now <= hour.start:
        return []
    window = Period("hour", hour.start, now)
    version = int((now - hour.start).total_seconds() // period_s) + 1
    records = [
        replace(r, dimensions={**r.dimensions, DEMO_DIMENSION: DEMO_RUNNING_HOUR}, version=version)
        for r in await engine.compute(window, now)
    ]
    if records:
        await engine.store.append_indicators(records)
    return records


async def demo_clock_loop(engine: IndicatorEngine) -> None:
    """Every ``indicators.demo_period_s``: the running hour's figures (stops when a reload turns it off)."""
    while True:
        period_s = engine.settings.demo_period_s
        if not period_s:
            return
        await asyncio.sleep(period_s)
        try:
            records = await running_hour(engine, period_s)
            log.info("demo clock: %d indicator records of the running hour (marked demo)", len(records))
        except Exception:
            log.exception("indicators: demo clock tick failed")
