"""Read planning: which registers to request so that a device costs as few transactions as possible.

Every Modbus transaction costs a round trip (on a 9,600-baud bus about 25 ms of wire time plus
the device's turnaround), while each extra register costs only 2 bytes, so points are merged into
blocks per function code, as Telegraf's request optimisation does:

* points are sorted by address and merged greedily while the block stays within the device's
  ``max_registers`` (the profile's ``max_registers_per_read``, at most 125);
* a gap of up to ``max_gap`` unused registers between two points is bridged (read and thrown
  away); a larger gap starts a new block. ``max_gap=0`` merges only touching points.

The planner is pure: ``plan_reads(points, max_registers, max_gap) -> list[ReadBlock]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PlannedPoint:
    """One point to read: ``name`` at ``address``, ``count`` registers, with function code ``function_code``."""

    name: str
    function_code: int
    address: int
    count: int


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One request: ``count`` registers from ``address``; ``points`` holds (name, register offset)."""

    function_code: int
    address: int
    count: int
    points: tuple[tuple[str, int], ...]

    @property
    def end(self) -> int:
        return self.address + self.count


def plan_reads(points: Iterable[PlannedPoint], max_registers: int = 125, max_gap: int = 0) -> list[ReadBlock]:
    """Merge ``points`` into as few blocks as ``max_registers`` and ``max_gap`` allow.

    Raises ``ValueError`` for a point wider than ``max_registers`` (the profile validator prevents it).
    """
    if max_registers < 1:
        raise ValueError("max_registers must be at least 1")
    if max_gap < 0:
        raise ValueError("max_gap must not be negative")
    blocks: list[ReadBlock] = []
    by_fc: dict[int, list[PlannedPoint]] = {}
    for p in points:
        if p.count > max_registers:
            raise ValueError(f"point {p.name!r} needs {p.count} registers, more than one read allows ({max_registers})")
        by_fc.setdefault(p.function_code, []).append(p)
    for fc in sorted(by_fc):
        group = sorted(by_fc[fc], key=lambda p: (p.address, p.count))
        start = end = -1
        members: list[PlannedPoint] = []
        for p in group:
            p_end = p.address + p.count
            if members and p.address - end <= max_gap and max(end, p_end) - start <= max_registers:
                members.append(p)
                end = max(end, p_end)
                continue
            if members:
                blocks.append(_block(fc, start, end, members))
            members, start, end = [p], p.address, p_end
        if members:
            blocks.append(_block(fc, start, end, members))
    return blocks


def _block(fc: int, start: int, end: int, members: list[PlannedPoint]) -> ReadBlock:
    return ReadBlock(fc, start, end - start, tuple((m.name, m.address - start) for m in members))
