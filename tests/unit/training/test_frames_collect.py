"""The frame store (files, quota policy, split) and the collector's choices, on real JPEGs from the media."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.training.collect import FrameCollector, candidate_reason, proposals_from
from edge.training.errors import TrainingError
from edge.training.frames import FrameStore, LabelBox, split_of, validate_boxes
from edge.vision.detections import Detections
from edge.vision.zones import Zone
from tests.unit.training.scenes import ebike_scenes

T0 = datetime(2026, 11, 27, tzinfo=UTC)
COCO = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck")


def _dets(rows: list[tuple[float, float, float, float, float, int]]) -> Detections:
    array = np.asarray(rows, np.float32).reshape(-1, 6)
    return Detections(array[:, :4].copy(), array[:, 4].copy(), array[:, 5].astype(np.int64), COCO)


@pytest.fixture(scope="module")
def jpegs(shared_dir: Path) -> list[bytes]:
    return [s.jpeg for s in ebike_scenes(shared_dir, 6, seed=3)]


def test_labels_round_trip_and_bad_boxes_are_refused_naming_the_place(tmp_path: Path, jpegs: list[bytes]) -> None:
    store = FrameStore(tmp_path, 10 << 20)
    record = store.add("cam-1", jpegs[0], reason="zone_occupied", width=584, height=375, ts=T0,
                       proposals=[LabelBox(1, 2, 30, 40, "car", 0.5)])
    assert record is not None and not record.labelled
    boxes = validate_boxes([{"x1": -1, "y1": 0, "x2": 100, "y2": 80, "label": "ebike"}], 584, 375, "here")
    assert boxes[0].x1 == 0.0  # clipped by at most 2 px
    saved = store.save_labels("cam-1", record.frame_id, boxes, user="installer")
    again = store.get("cam-1", record.frame_id)
    assert again.labelled and again.boxes == saved.boxes and again.proposals[0].label == "car"
    for bad, words in [
        ({"x1": 0, "y1": 0, "x2": 10, "y2": 10, "label": "dog"}, "unknown class 'dog'"),
        ({"x1": 0, "y1": 0, "x2": 900, "y2": 10, "label": "car"}, "outside the 584x375 frame"),
        ({"x1": 5, "y1": 5, "x2": 6, "y2": 50, "label": "car"}, "under 2 px"),
        ({"x1": "a", "y1": 5, "x2": 6, "y2": 50, "label": "car"}, "must be numbers"),
        ({"x1": float("nan"), "y1": 5, "x2": 6, "y2": 50, "label": "car"}, "finite"),
    ]:
        with pytest.raises(TrainingError, match="frame f: box 1") as info:
            validate_boxes([{"x1": 0, "y1": 0, "x2": 10, "y2": 10, "label": "car"}, bad], 584, 375, "frame f")
        assert words in str(info.value)
    with pytest.raises(TrainingError, match="not a JPEG"):
        store.add("cam-1", b"GIF89a", reason="manual", width=1, height=1)
    with pytest.raises(TrainingError, match="not a safe identifier"):
        store.add("../etc", jpegs[0], reason="manual", width=1, height=1)
    with pytest.raises(TrainingError, match="unknown collection reason"):
        store.add("cam-1", jpegs[0], reason="boredom", width=1, height=1)


def test_quota_evicts_automatic_unlabelled_frames_first_and_never_labelled_ones(tmp_path: Path,
                                                                               jpegs: list[bytes]) -> None:
    size = max(len(j) for j in jpegs)
    store = FrameStore(tmp_path, 3 * size + 10)
    labelled = store.add("cam-1", jpegs[0], reason="zone_occupied", width=584, height=375, ts=T0)
    staff = store.add("cam-1", jpegs[1], reason="false_alarm", width=584, height=375, ts=T0 + timedelta(seconds=1))
    auto = store.add("cam-2", jpegs[2], reason="near_threshold", width=584, height=375, ts=T0 + timedelta(seconds=2))
    assert labelled and staff and auto
    store.save_labels("cam-1", labelled.frame_id, [], user="installer")
    newer = store.add("cam-2", jpegs[3], reason="zone_occupied", width=584, height=375, ts=T0 + timedelta(seconds=3))
    kept = {r.frame_id for r in store.frames()}
    assert newer is not None and auto.frame_id not in kept, "the oldest automatic frame made room"
    assert {labelled.frame_id, staff.frame_id, newer.frame_id} == kept
    # an automatic frame may not push out the one staff marked; the labelled one is never evicted
    store.delete("cam-2", newer.frame_id)
    store.add("cam-2", jpegs[4], reason="zone_occupied", width=584, height=375, ts=T0 + timedelta(seconds=4))
    refused = store.add("cam-2", jpegs[5], reason="zone_occupied", width=584, height=375,
                        ts=T0 + timedelta(seconds=5))
    assert refused is not None  # it evicted the older automatic frame, not the staff one
    assert staff.frame_id in {r.frame_id for r in store.frames()}
    assert store.used_bytes() <= 3 * size + 10
    # a fresh store over the same folder sees the same usage (sizes come from the files)
    assert FrameStore(tmp_path, 1 << 30).used_bytes() == store.used_bytes()


def test_split_is_stable_and_near_the_fraction() -> None:
    ids = [f"20261127T0000{i:02d}000000-{i:08x}" for i in range(60)] + [f"x{i}" for i in range(940)]
    held = [split_of(i, 0.2) for i in ids]
    assert held == [split_of(i, 0.2) for i in ids]
    assert 0.15 < held.count("holdout") / len(held) < 0.25


def test_candidate_reasons_and_rate_limit(tmp_path: Path, jpegs: list[bytes]) -> None:
    from edge.config.cameras import ZoneConfig

    zone = Zone.from_config(ZoneConfig(id="lane", kind="fire_lane", polygon=[(0, 100), (300, 100), (300, 300),
                                                                              (0, 300)]), (2,))
    confident_in_zone = _dets([(10, 120, 100, 200, 0.9, 2)])
    near = _dets([(400, 10, 450, 50, 0.35, 2)])
    elsewhere = _dets([(400, 10, 450, 50, 0.9, 2)])
    assert candidate_reason(confident_in_zone, [zone], 0.3, 0.15) == "zone_occupied"
    assert candidate_reason(near, [zone], 0.3, 0.15) == "near_threshold"
    assert candidate_reason(elsewhere, [zone], 0.3, 0.15) is None
    assert candidate_reason(_dets([]), [zone], 0.3, 0.15) is None
    proposals = proposals_from(_dets([(1, 1, 9, 9, 0.8, 3), (1, 1, 9, 9, 0.8, 4), (2, 2, 8, 8, 0.7, 7)]))
    assert [p.label for p in proposals] == ["ebike", "truck_van"], "motorcycle pre-fills as e-bike; airplane dropped"

    collector = FrameCollector(FrameStore(tmp_path, 10 << 20), min_interval_s=30)
    image = cv2.imdecode(np.frombuffer(jpegs[0], np.uint8), cv2.IMREAD_COLOR)
    first = collector.observe("cam-1", image, confident_in_zone, [zone], 0.3, 100.0, T0)
    assert first is not None and first.reason == "zone_occupied" and first.proposals[0].label == "car"
    assert collector.observe("cam-1", image, confident_in_zone, [zone], 0.3, 110.0, T0) is None, "rate-limited"
    assert collector.observe("cam-1", image, near, [zone], 0.3, 110.0, T0) is not None, "another reason"
    assert collector.observe("cam-2", image, confident_in_zone, [zone], 0.3, 110.0, T0) is not None
    assert collector.observe("cam-1", image, confident_in_zone, [zone], 0.3, 131.0, T0) is not None
    staff = collector.offer("cam-1", jpegs[1], None, "missed_alarm")
    assert staff is not None and staff.reason == "missed_alarm" and (staff.width, staff.height) == (584, 375)
    with pytest.raises(TrainingError, match="cam-1: frame is not a decodable JPEG"):
        collector.offer("cam-1", b"\xff\xd8 broken", None, "false_alarm")
    assert len(collector.store.frames("cam-1")) == 4
