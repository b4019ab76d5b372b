"""The pipeline on real media: detections where the annotations are, ROI cropping, config errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edge.config.cameras import CameraConfig
from edge.errors import ConfigError
from edge.vision.detections import iou_matrix
from edge.vision.detector import Detector
from edge.vision.pipeline import CameraPipeline, merge_vehicle_classes
from edge.vision.preprocess import Region

TRUTH = Path(__file__).resolve().parents[2] / "data" / "media_truth.yaml"


def camera(**extra: object) -> CameraConfig:
    doc = {"id": "cam", "name": "cam", "location": {"building": "1"}, "onvif": False,
           "stream": {"rtsp_uri": "rtsp://127.0.0.1/x"}, **extra}
    return CameraConfig.model_validate(doc)


def truth_boxes(name: str, kind: str) -> np.ndarray:
    data = yaml.safe_load(TRUTH.read_text())
    return np.asarray([o["box"] for o in data["images"][name]["objects"] if o["kind"] == kind], np.float32)


@pytest.mark.parametrize(
    ("name", "kind", "label"),
    [("b2_coco_000000000629.jpg", "two_wheeler", "motorcycle"), ("b4_darknet_dog.jpg", "two_wheeler", "bicycle")],
)
def test_detector_finds_annotated_two_wheeler(detector: Detector, shared_dir: Path, name: str, kind: str,
                                              label: str) -> None:
    image = cv2.imread(str(shared_dir / "media" / name))
    detections, timings = detector.detect(image)
    found = detections.of_classes((detector.labels.index(label),))
    assert len(found) >= 1
    assert iou_matrix(truth_boxes(name, kind)[:1], found.boxes).max() >= 0.5
    assert timings.inference_ms > 0


def test_roi_crop_finds_distant_cars_the_whole_frame_misses(detector: Detector, shared_dir: Path) -> None:
    image = cv2.imread(str(shared_dir / "media" / "a7_frigate_ground-plane.jpg"))
    distant = truth_boxes("a7_frigate_ground-plane.jpg", "vehicle")[3:6]  # the three small cars on the left
    vehicles = tuple(detector.labels.index(n) for n in ("car", "truck", "bus"))
    whole, _ = detector.detect(image, class_ids=vehicles)
    crop, _ = detector.detect(image, Region(0, 400, 420, 560), class_ids=vehicles)
    hits_whole = int((iou_matrix(distant, whole.boxes).max(axis=1, initial=0) >= 0.5).sum())
    hits_crop = int((iou_matrix(distant, crop.boxes).max(axis=1, initial=0) >= 0.5).sum())
    assert hits_whole == 0 and hits_crop >= 2


def test_group_merge_removes_car_truck_duplicates(detector: Detector, shared_dir: Path) -> None:
    image = cv2.imread(str(shared_dir / "media" / "a5_paddledet_ppvehicle_demo_001.jpeg"))
    detections, _ = detector.detect(image)
    merged = merge_vehicle_classes(detections)
    assert len(merged) < len(detections)
    vehicles = merged.of_classes(tuple(detector.labels.index(n) for n in ("car", "truck", "bus")))
    overlap = iou_matrix(vehicles.boxes, vehicles.boxes)
    np.fill_diagonal(overlap, 0)
    assert overlap.max() < 0.6


def test_unknown_class_in_zone_is_a_config_error(detector: Detector) -> None:
    cam = camera(zones=[{"id": "door", "kind": "ebike_entry", "polygon": [[0, 0], [10, 0], [10, 10]],
                         "classes": ["e-bike"]}])
    with pytest.raises(ConfigError, match=r"cameras\[cam\]\.zones\[0\] \(door\): class 'e-bike' is not in model"):
        CameraPipeline(cam, detector)


def test_no_zones_means_no_inference(detector: Detector) -> None:
    pipeline = CameraPipeline(camera(), detector)
    result = pipeline.process(np.zeros((100, 100, 3), np.uint8), 0.0, datetime(2025, 1, 1, tzinfo=UTC))
    assert not result.inferred and result.decisions == ()
