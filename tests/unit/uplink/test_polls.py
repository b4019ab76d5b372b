"""Telemetry leases group a poll's readings into one record whose id does not depend on how the lane was read."""

from __future__ import annotations

import random
from typing import Any

from edge.uplink.polls import MAX_POINTS, SEAL_S, group_polls

T = "2026-11-27T08:00:{:02d}.000Z"
T_S = 1_795_766_400.0  # 2026-11-27T08:00:00Z in seconds


def _readings(polls: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
    """(device, second, points) per poll -> v2-shaped reading payloads with increasing ids."""
    out = []
    for device, second, points in polls:
        for p in range(points):
            out.append({"id": f"{len(out):026d}", "device_id": device, "point": f"tag{p:02d}", "value": float(p),
                        "unit": "V", "quality": "good", "ts": T.format(second)})
    return out


def _lease_all(readings: list[dict[str, Any]], sizes: random.Random | None, now_s: float) -> list[tuple]:
    """Walk the lane like the uplink: lease, group, move to the last reading covered, repeat."""
    done, at = [], 0
    while at < len(readings):
        want = sizes.randint(1, 80) if sizes else len(readings)
        while not (records := group_polls(readings[at : at + want], cut=at + want < len(readings), now_s=now_s)):
            assert at + want < len(readings), "a read to the end always yields the sealed polls"
            want *= 2  # a read cut inside its only poll: the uplink reads again, larger
        for r in records:
            done.append((r.id, r.last_id, r.payload["device_id"], r.payload["ts"],
                         tuple(p["point"] for p in r.payload["points"])))
        at = next(i for i, x in enumerate(readings) if x["id"] == records[-1].last_id) + 1
    return done


def test_one_record_per_poll_with_each_point_its_own() -> None:
    readings = _readings([("EM-1", 0, 30), ("EM-2", 0, 30), ("EM-1", 1, 30)])
    readings[31]["quality"], readings[31]["value"] = "bad", float("inf")
    records = group_polls(readings, cut=False, now_s=T_S + 60)
    assert [(r.id, r.last_id, len(r.payload["points"])) for r in records] == [
        (f"{0:026d}", f"{29:026d}", 30), (f"{30:026d}", f"{59:026d}", 30), (f"{60:026d}", f"{89:026d}", 30)]
    assert records[1].payload["points"][1] == {"point": "tag01", "value": None, "unit": "V", "quality": "bad"}
    assert set(records[0].payload) == {"id", "device_id", "ts", "points"}


def test_ids_are_the_same_however_the_lane_is_leased() -> None:
    """Resends after a crash lease from another position with other sizes: same records, same ids."""
    rng = random.Random(13)
    polls = [(f"D{rng.randint(1, 4)}", s // 3, rng.randint(1, 40)) for s in range(60)]
    readings = _readings(polls)
    whole = _lease_all(readings, None, now_s=T_S + 600)
    for seed in range(20):
        assert _lease_all(readings, random.Random(seed), now_s=T_S + 600) == whole
    assert sum(len(r[4]) for r in whole) == len(readings)


def test_the_newest_poll_waits_until_it_cannot_grow() -> None:
    readings = _readings([("EM-1", 0, 3), ("EM-2", 0, 3)])
    assert [r.id for r in group_polls(readings, cut=False, now_s=T_S + SEAL_S / 2)] == [f"{0:026d}"]
    assert [r.id for r in group_polls(readings, cut=True, now_s=T_S + 600)] == [f"{0:026d}"]
    assert len(group_polls(readings, cut=False, now_s=T_S + SEAL_S)) == 2


def test_a_long_poll_is_cut_every_max_points() -> None:
    readings = _readings([("BIG", 0, MAX_POINTS + 5)])
    first = group_polls(readings[:MAX_POINTS], cut=True, now_s=T_S)
    assert [len(r.payload["points"]) for r in first] == [MAX_POINTS]  # a full chunk is complete
    records = group_polls(readings, cut=False, now_s=T_S + 600)
    assert [len(r.payload["points"]) for r in records] == [MAX_POINTS, 5]
    assert records[1].id == readings[MAX_POINTS]["id"]
