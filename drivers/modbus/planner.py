"""Read planning: which registers to request so that a device costs as few transactions as possible.

Every Modbus transaction costs a round trip (on a 9,600-baud bus about 25 ms of wire time plus
the device's turnaround), while each extra register costs only 2 bytes, so points are merged into
blocks per function code, as Telegraf's request optimisation does:

* points are sorted by address and merged greedily while the block stays within the device's
  ``max_registers`` (the profile's ``max_registers_per_read``, at most 125);
* a gap of up to ``max_gap`` unused registers between two points is bridged (read and thrown
  away); a larger gap starts a new block. ``max_gap=0`` merges only touching points.

Coils (FC1) and discrete inputs (FC2) are bits, one per address: they merge the same way in blocks
of up to ``max_bits`` (2,000, the spec's limit), bridging gaps of up to ``16 * max_gap`` bits (the
wire cost of ``max_gap`` registers). Blocks never mix function codes, so a bit read never shares a
request with a register read, and a register-only profile plans exactly as before.

The planner is pure: ``plan_reads(points, max_registers, max_gap) -> list[ReadBlock]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from drivers.modbus.codec import BIT_FUNCTION_CODES, MAX_READ_BITS


@dataclass(frozen=True, slots=True)
class PlannedPoint:
    """One point to read: ``name`` at ``address``, ``count`` registers (bits for FC1/FC2), with ``function_code``."""

    name: str
    function_code: int
    address: int
    count: int


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One request: ``count`` registers (bits) from ``address``; ``points`` holds (name, register / bit offset)."""

    function_code: int
    address: int
    count: int
    points: tuple[tuple[str, int], ...]

    @property
    def end(self) -> int:
        return self.address + self.count


def plan_reads(points: Iterable[PlannedPoint], max_registers: int = 125, max_gap: int = 0, *,
               max_bits: int = MAX_READ_BITS) -> list[ReadBlock]:
    """Merge ``points`` into as few blocks as ``max_registers`` (``max_bits``) and ``max_gap`` allow.

    Raises ``ValueError`` for a point wider than ``max_registers`` (the profile validator prevents it).
    """
    if max_registers < 1 or max_bits < 1:
        raise ValueError("max_registers and max_bits must be at least 1")
    if max_gap < 0:
        raise ValueError("max_gap must not be negative")
    blocks: list[ReadBlock] = []
    by_fc: dict[int, list[PlannedPoint]] = {}
    for p in points:
        limit = max_bits if p.function_code in BIT_FUNCTION_CODES else max_registers
        if p.count > limit:
            raise ValueError(f"point {p.name!r} needs {p.count} addresses, more than one read allows ({limit})")
        by_fc.setdefault(p.function_code, []).append(p)
    for fc in sorted(by_fc):
        bits = fc in BIT_FUNCTION_CODES
        max_count = max_bits if bits else max_registers
        gap = 16 * max_gap if bits else max_gap
        group = sorted(by_fc[fc], key=lambda p: (p.address, p.count))
        start = end = -1
        members: list[PlannedPoint] = []
        for p in group:
            p_end = p.address + p.count
            if members and p.address - end <= gap and max(end, p_end) - start <= max_count:
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
