"""Telemetry leases group a poll's readings into one record whose id does not depend on how the lane was read."""

from __future__ import annotations

import random
from pathlib import Path

from edge.records import Lane
from edge.store import Store
from edge.store.codec import MAX_POINTS, SEAL_S, telemetry_polls

T_US = 1_795_766_400_000_000  # 2026-11-27T08:00:00Z in microseconds


def _rows(polls: list[tuple[str, int, int]]) -> list[tuple]:
    """(device, second, points) per poll -> readings rows (id, device, point, value, unit, quality, ts_us)."""
    out: list[tuple] = []
    for device, second, points in polls:
        for p in range(points):
            out.append((f"{len(out):026d}", device, f"tag{p:02d}", float(p), "V", 0, T_US + second * 1_000_000))
    return out


def _lease_all(rows: list[tuple], sizes: random.Random | None, now_us: int) -> list[tuple]:
    """Walk the lane like the uplink: lease, group, move to the last reading covered, repeat."""
    done, at = [], 0
    while at < len(rows):
        want = sizes.randint(1, 80) if sizes else len(rows)
        while not (polls := telemetry_polls(rows[at : at + want], cut=at + want < len(rows), now_us=now_us)):
            assert at + want < len(rows), "a read to the end always yields the sealed polls"
            want *= 2  # a read cut inside its only poll: the uplink reads again, larger
        for first, last, payload in polls:
            done.append((first, last, payload["device_id"], payload["ts"], tuple(p["point"] for p in payload["points"])))
        at = next(i for i, r in enumerate(rows) if r[0] == polls[-1][1]) + 1
    return done


def test_one_record_per_poll_with_each_point_its_own() -> None:
    rows = _rows([("EM-1", 0, 30), ("EM-2", 0, 30), ("EM-1", 1, 30)])
    rows[31] = (*rows[31][:3], float("inf"), "m³/h", 2, rows[31][6])
    polls = telemetry_polls(rows, cut=False, now_us=T_US + 60_000_000)
    assert [(first, last, len(p["points"])) for first, last, p in polls] == [
        (f"{0:026d}", f"{29:026d}", 30), (f"{30:026d}", f"{59:026d}", 30), (f"{60:026d}", f"{89:026d}", 30)]
    assert polls[1][2]["points"][1] == {"point": "tag01", "value": None, "unit": "m3/h", "quality": "bad"}
    assert polls[0][2]["ts"] == "2026-11-27T08:00:00.000Z" and set(polls[0][2]) == {"id", "device_id", "ts", "points"}


def test_ids_are_the_same_however_the_lane_is_leased() -> None:
    """Resends after a crash lease from another position with other sizes: same records, same ids."""
    rng = random.Random(13)
    rows = _rows([(f"D{rng.randint(1, 4)}", s // 3, rng.randint(1, 40)) for s in range(60)])
    whole = _lease_all(rows, None, now_us=T_US + 600_000_000)
    for seed in range(20):
        assert _lease_all(rows, random.Random(seed), now_us=T_US + 600_000_000) == whole
    assert sum(len(r[4]) for r in whole) == len(rows)


def test_the_newest_poll_waits_until_it_cannot_grow() -> None:
    rows = _rows([("EM-1", 0, 3), ("EM-2", 0, 3)])
    assert [p[0] for p in telemetry_polls(rows, cut=False, now_us=T_US + int(SEAL_S * 500_000))] == [f"{0:026d}"]
    assert [p[0] for p in telemetry_polls(rows, cut=True, now_us=T_US + 600_000_000)] == [f"{0:026d}"]
    assert len(telemetry_polls(rows, cut=False, now_us=T_US + int(SEAL_S * 1_000_000))) == 2


def test_a_long_poll_is_cut_every_max_points() -> None:
    rows = _rows([("BIG", 0, MAX_POINTS + 5)])
    assert [len(p[2]["points"]) for p in telemetry_polls(rows[:MAX_POINTS], cut=True, now_us=T_US)] == [MAX_POINTS]
    polls = telemetry_polls(rows, cut=False, now_us=T_US + 600_000_000)
    assert [len(p[2]["points"]) for p in polls] == [MAX_POINTS, 5] and polls[1][0] == rows[MAX_POINTS][0]


async def test_the_outbox_hands_out_polls_with_the_rows_they_cover(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from edge.records import Reading

    t = datetime(2026, 11, 1, tzinfo=UTC)
    async with Store(tmp_path / "s.db", maintenance_interval_s=0) as store:
        first = await store.append_readings([Reading("EM-1", f"p{i}", float(i), "kWh", t) for i in range(30)])
        second = await store.append_readings([Reading("EM-2", f"p{i}", float(i), "kWh", t) for i in range(30)])
        polls = await store.pending_polls("", 1000)
        assert [(p.id, p.last_id, len(p.payload["points"])) for p in polls] == [
            (first[0], first[-1], 30), (second[0], second[-1], 30)]
        assert await store.pending_polls("", 45) == polls[:1]  # the read ends inside EM-2's poll: it waits
        assert len(await store.pending(Lane.TELEMETRY, "", 1000)) == 60  # the one-row-per-reading view stays
