"""Detection quality on the shared media: event precision/recall per scenario, and frame-level recall.

``python -m simulators.camera.evaluate`` prints the tables of docs/vision-quality.md:

1. *Events*: every scenario (``simulators.camera.scenarios``) is played through the real pipeline
   (YOLOX-Nano, tracker, analytics, motion gating) at ``fps`` analysed frames per second with
   scene time as the clock, and the emitted ``fire.*`` events are matched to the expected ones in
   ``tests/data/scenario_truth.yaml`` (same code and zone, within the tolerance window). Whole
   frame and zone-ROI inference are both run.
2. *Frames*: the hand-annotated objects of ``tests/data/media_truth.yaml`` against single-image
   detections (IoU >= 0.5, one detection per object), whole frame versus the scope crop.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from edge.config.cameras import CameraConfig
from edge.vision.detections import iou_matrix
from edge.vision.detector import Detector, shared_detector
from edge.vision.pipeline import CameraPipeline, merge_vehicle_classes
from edge.vision.preprocess import Region
from models.registry import ModelRegistry
from simulators.camera.scenarios import scenario
from simulators.camera.scenes import media_path

REPO = Path(__file__).resolve().parents[2]
TRUTH_DIR = REPO / "tests" / "data"
KINDS = {"vehicle": ("car", "truck", "bus"), "two_wheeler": ("motorcycle", "bicycle")}
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Emitted:
    code: str
    zone: str
    t: float


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    details: list[str] = field(default_factory=list)

    def add(self, other: Score) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.details += other.details

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def camera_for(name: str, overrides: dict[str, Any] | None = None) -> CameraConfig:
    story = scenario(name)
    doc: dict[str, Any] = {
        "id": name.replace("_", "-"), "name": name, "location": {"building": "sim"}, "onvif": False,
        "stream": {"rtsp_uri": f"rtsp://127.0.0.1/{name}"}, "zones": [z.as_config() for z in story.zones],
    }
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return CameraConfig.model_validate(doc)


def run_scenario(name: str, detector: Detector, *, fps: float, duration_s: float,
                 overrides: dict[str, Any] | None = None) -> list[Emitted]:
    """The ``fire.*`` events the pipeline emits on scenario ``name``, with scene time as the clock."""
    story = scenario(name)
    pipeline = CameraPipeline(camera_for(name, overrides), detector)
    emitted: list[Emitted] = []
    for i in range(int(duration_s * fps)):
        t = i / fps
        result = pipeline.process(story.render(t), t, EPOCH + timedelta(seconds=t))
        emitted += [Emitted(d.code, d.zone_id, t) for d in result.decisions]
    return emitted


def match_events(emitted: list[Emitted], expected: list[dict[str, Any]], early_s: float, late_s: float) -> Score:
    score = Score()
    free = list(emitted)
    for exp in expected:
        hit = next((e for e in free if e.code == exp["code"] and e.zone == exp["zone"]
                    and exp["at"] - early_s <= e.t <= exp["at"] + late_s), None)
        if hit is None:
            score.fn += 1
            score.details.append(f"missed {exp['code']} {exp['zone']} at {exp['at']}")
        else:
            score.tp += 1
            free.remove(hit)
    for e in free:
        score.fp += 1
        score.details.append(f"false {e.code} {e.zone} at {e.t:.0f}")
    return score


def evaluate_events(detector: Detector, truth: dict[str, Any], *, fps: float, roi: str,
                    names: list[str] | None = None) -> dict[str, dict[str, Score]]:
    """{scenario: {code: Score}} for every (or the named) scenario in ``truth``."""
    settings = truth["settings"]
    out: dict[str, dict[str, Score]] = {}
    for name, case in truth["scenarios"].items():
        if names is not None and name not in names:
            continue
        overrides = {"analytics": {"dwell_s": settings["dwell_s"], "hold_s": settings["hold_s"]},
                     "roi": {"mode": roi}}
        emitted = run_scenario(name, detector, fps=fps, duration_s=case["duration_s"], overrides=overrides)
        codes = {e["code"] for e in case["expected"]} | {e.code for e in emitted}
        out[name] = {
            code: match_events([e for e in emitted if e.code == code],
                               [x for x in case["expected"] if x["code"] == code],
                               settings["early_s"], settings["late_s"])
            for code in sorted(codes)
        }
    return out


def _kind_of(label: str) -> str | None:
    return next((k for k, labels in KINDS.items() if label in labels), None)


def _in_scope(box: np.ndarray, scope: list[float]) -> bool:
    x, y = (box[0] + box[2]) / 2, box[3]
    return scope[0] <= x <= scope[2] and scope[1] <= y <= scope[3]


def frame_score(detector: Detector, image: np.ndarray, objects: list[dict[str, Any]], scope: list[float],
                crop: list[float] | None = None) -> dict[str, Score]:
    """Per kind TP/FP/FN of one image: objects and detections with their bottom-centre in ``scope``.

    ``crop`` given: inference runs on that crop only (scaled to the model input).
    """
    region = Region(*(int(v) for v in crop)) if crop is not None else None
    detections, _ = detector.detect(image, region)
    detections = merge_vehicle_classes(detections)
    scores: dict[str, Score] = {}
    for kind, labels in KINDS.items():
        ids = tuple(detector.labels.index(n) for n in labels)
        det = detections.of_classes(ids)
        keep = np.asarray([_in_scope(b, scope) for b in det.boxes], bool) if len(det) else np.zeros(0, bool)
        det = det.select(keep)
        boxes = [o["box"] for o in objects if o["kind"] == kind and _in_scope(np.asarray(o["box"]), scope)]
        truth = np.asarray(boxes, np.float32).reshape(-1, 4)
        iou = iou_matrix(truth, det.boxes)
        used: set[int] = set()
        score = Score()
        for row in range(truth.shape[0]):
            order = np.argsort(-iou[row]) if iou.shape[1] else []
            hit = next((int(c) for c in order if iou[row, c] >= 0.5 and int(c) not in used), None)
            if hit is None:
                score.fn += 1
            else:
                score.tp += 1
                used.add(hit)
        score.fp += len(det) - len(used)
        scores[kind] = score
    return scores


def _media_items(media: dict[str, Any]) -> list[tuple[str, np.ndarray, dict[str, Any]]]:
    items: list[tuple[str, np.ndarray, dict[str, Any]]] = []
    for name, item in media["images"].items():
        items.append((name, cv2.imread(str(media_path(name)), cv2.IMREAD_COLOR), item))
    for name, clip in media.get("clip_frames", {}).items():
        wanted = {int(k): v for k, v in clip["frames"].items()}
        capture = cv2.VideoCapture(str(media_path(name)))
        index = 0
        while wanted:
            ok, frame = capture.read()
            if not ok:
                break
            if index in wanted:
                items.append((f"{name}@{index}", frame, {**clip, "objects": wanted.pop(index)}))
            index += 1
        capture.release()
    return items


def evaluate_frames(detector: Detector, media: dict[str, Any]) -> dict[str, dict[str, dict[str, Score]]]:
    """{image: {"scope": {kind: Score}, "roi_full": ..., "roi_crop": ...}} (the roi ones when annotated)."""
    out: dict[str, dict[str, dict[str, Score]]] = {}
    for name, image, item in _media_items(media):
        entry = {"scope": frame_score(detector, image, item["objects"], item["scope"])}
        if "roi" in item:
            entry["roi_full"] = frame_score(detector, image, item["objects"], item["roi"])
            entry["roi_crop"] = frame_score(detector, image, item["objects"], item["roi"], item["roi"])
        out[name] = entry
    return out


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report(fps: float, names: list[str] | None = None) -> str:
    detector = shared_detector(ModelRegistry(), "yolox_nano")
    truth = load_yaml(TRUTH_DIR / "scenario_truth.yaml")
    media = load_yaml(TRUTH_DIR / "media_truth.yaml")
    lines = [f"### Events ({fps:g} analysed frames/s, gating on, dwell {truth['settings']['dwell_s']} s, "
             f"hold {truth['settings']['hold_s']} s)", "",
             "| scenario | inference | code | TP | FP | FN | notes |", "|---|---|---|---|---|---|---|"]
    totals: dict[tuple[str, str], Score] = {}
    for roi in ("full", "zones"):
        for name, by_code in evaluate_events(detector, truth, fps=fps, roi=roi, names=names).items():
            if not by_code:
                lines.append(f"| {name} | {roi} | (none expected) | 0 | 0 | 0 | |")
            for code, s in by_code.items():
                lines.append(f"| {name} | {roi} | {code} | {s.tp} | {s.fp} | {s.fn} | {'; '.join(s.details)} |")
                totals.setdefault((roi, code), Score()).add(s)
    lines += ["", "| inference | code | precision | recall |", "|---|---|---|---|"]
    for (roi, code), s in sorted(totals.items()):
        lines.append(f"| {roi} | {code} | {_fmt(s.precision)} | {_fmt(s.recall)} ({s.tp}/{s.tp + s.fn}) |")
    frames = evaluate_frames(detector, media)
    lines += ["", "### Frames (IoU >= 0.5)", "",
              "| image | kind | whole view TP/FP/FN | ROI objects, whole frame | ROI objects, crop |",
              "|---|---|---|---|---|"]
    sums: dict[tuple[str, str], Score] = {}
    for name, entry in frames.items():
        for kind in KINDS:
            cells = []
            for key in ("scope", "roi_full", "roi_crop"):
                s = entry.get(key, {}).get(kind)
                if s is None or s.tp + s.fp + s.fn == 0:
                    cells.append("-")
                    continue
                cells.append(f"{s.tp}/{s.fp}/{s.fn}")
                sums.setdefault((key, kind), Score()).add(s)
            if cells != ["-", "-", "-"]:
                lines.append(f"| {name} | {kind} | {' | '.join(cells)} |")
    lines += ["", "| set | kind | precision | recall |", "|---|---|---|---|"]
    for (key, kind), s in sorted(sums.items()):
        lines.append(f"| {key} | {kind} | {_fmt(s.precision)} | {_fmt(s.recall)} ({s.tp}/{s.tp + s.fn}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.camera.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--fps", type=float, default=1.0, help="analysed frames per second of scene time")
    parser.add_argument("--scenario", action="append", help="only these scenarios")
    args = parser.parse_args(argv)
    print(report(args.fps, args.scenario))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
