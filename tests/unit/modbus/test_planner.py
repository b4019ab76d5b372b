"""Request merging: contiguous and near registers in as few reads as the device allows."""

from __future__ import annotations

import pytest

from drivers.modbus.planner import PlannedPoint, plan_reads
from drivers.modbus.profile import ProfileLibrary


def pts(*specs: tuple[str, int, int, int]) -> list[PlannedPoint]:
    return [PlannedPoint(name, fc, address, count) for name, fc, address, count in specs]


def test_contiguous_points_make_one_block() -> None:
    blocks = plan_reads(pts(("a", 3, 0, 2), ("b", 3, 2, 2), ("c", 3, 4, 1)), 125, 0)
    assert [(b.address, b.count) for b in blocks] == [(0, 5)]
    assert blocks[0].points == (("a", 0), ("b", 2), ("c", 4))


def test_gap_is_bridged_up_to_max_gap() -> None:
    points = pts(("a", 3, 0, 2), ("b", 3, 10, 2))  # 8 unused registers between them
    assert len(plan_reads(points, 125, 8)) == 1
    assert len(plan_reads(points, 125, 7)) == 2


def test_max_registers_splits_blocks() -> None:
    points = pts(*[(f"p{i}", 4, 2 * i, 2) for i in range(50)])  # 100 registers, no gaps
    blocks = plan_reads(points, 40, 16)
    assert [b.count for b in blocks] == [40, 40, 20]
    assert sum(len(b.points) for b in blocks) == 50


def test_function_codes_never_mix_and_order_is_irrelevant() -> None:
    points = pts(("i", 4, 1, 1), ("h2", 3, 5, 1), ("h1", 3, 0, 2))
    blocks = plan_reads(points, 125, 10)
    assert [(b.function_code, b.address, b.count) for b in blocks] == [(3, 0, 6), (4, 1, 1)]


def test_overlapping_points_share_registers() -> None:
    blocks = plan_reads(pts(("whole", 3, 0, 4), ("low", 3, 2, 2)), 125, 0)
    assert [(b.address, b.count) for b in blocks] == [(0, 4)]


def test_point_wider_than_a_read_is_refused() -> None:
    with pytest.raises(ValueError, match="more than one read"):
        plan_reads(pts(("wide", 3, 0, 4)), 2, 0)


def test_shipped_sdm630_fills_a_read_exactly() -> None:
    profile = ProfileLibrary().get("eastron_sdm630")
    points = [PlannedPoint(n, profile.spec_order(p)[0], p.address, p.registers) for n, p in profile.points.items()]
    blocks = plan_reads(points, profile.max_registers_per_read, 16)
    # 0x0000..0x004F is 80 registers: one read; L-L voltages and per-phase energies two more.
    assert [(b.address, b.count) for b in blocks] == [(0x0000, 80), (0x00C8, 6), (0x0156, 16)]
