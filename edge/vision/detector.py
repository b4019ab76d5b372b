"""Run a model card's ONNX model on frames with onnxruntime: letterbox -> inference -> decode -> NMS.

One ``Detector`` (one onnxruntime session) is shared by every camera that uses the same card and
settings (``shared_detector``): a session holds the weights and its arena once, and ``run`` is
thread-safe. CPU is the default execution provider; ``providers`` takes any onnxruntime provider
names, in preference order, and an unavailable one is a config error rather than a silent
fallback. ``intra_op_threads`` bounds the threads one inference may use (on the 2-core gateway, 1
thread per inference and 2 inference workers use both cores with no oversubscription).

Failure modes: a missing or mismatching weights file raises from ``models.registry`` at build time;
an output of the wrong shape raises ``ValueError`` on the first frame.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from edge.errors import ConfigError
from edge.vision.decode import make_decoder, nms
from edge.vision.detections import Detections
from edge.vision.preprocess import Letterboxer, Region
from models.registry import ModelCard, ModelRegistry

DEFAULT_PROVIDERS: tuple[str, ...] = ("CPUExecutionProvider",)


@dataclass(frozen=True, slots=True)
class DetectTimings:
    """Where one ``detect`` call spent its time, in milliseconds."""

    letterbox_ms: float
    inference_ms: float
    decode_ms: float

    @property
    def total_ms(self) -> float:
        return self.letterbox_ms + self.inference_ms + self.decode_ms


class Detector:
    """A model card bound to an onnxruntime session."""

    def __init__(
        self,
        card: ModelCard,
        weights: Path,
        *,
        providers: tuple[str, ...] = DEFAULT_PROVIDERS,
        intra_op_threads: int = 1,
        score_threshold: float | None = None,
        nms_iou: float | None = None,
    ) -> None:
        available = set(ort.get_available_providers())
        missing = [p for p in providers if p not in available]
        if missing:
            raise ConfigError(
                f"model {card.name!r}: execution provider(s) {missing} not available in this onnxruntime "
                f"build (available: {', '.join(sorted(available))})"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(weights), sess_options=options, providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own untyped errors (Fail, InvalidGraph...)
            raise ConfigError(f"model {card.name!r}: onnxruntime cannot load {weights}: {exc}") from exc
        inputs = {i.name for i in self._session.get_inputs()}
        outputs = {o.name for o in self._session.get_outputs()}
        if card.input.name not in inputs or card.output.name not in outputs:
            raise ConfigError(
                f"model {card.name!r}: card names input {card.input.name!r} / output {card.output.name!r}, "
                f"the model has inputs {sorted(inputs)} and outputs {sorted(outputs)}"
            )
        self.card = card
        self.providers = providers
        self.intra_op_threads = intra_op_threads
        self.score_threshold = card.score_threshold if score_threshold is None else score_threshold
        self.nms_iou = card.nms_iou if nms_iou is None else nms_iou
        self._decoder = make_decoder(card)
        self._local = threading.local()

    @property
    def labels(self) -> tuple[str, ...]:
        return self.card.classes

    def _letterboxer(self) -> Letterboxer:
        boxer: Letterboxer | None = getattr(self._local, "letterboxer", None)
        if boxer is None:
            boxer = Letterboxer(self.card.input)
            self._local.letterboxer = boxer
        return boxer

    def infer(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        """Inference alone on a prepared NCHW tensor (the benchmark's baseline)."""
        result = self._session.run([self.card.output.name], {self.card.input.name: tensor})
        return np.asarray(result[0])

    def detect(
        self,
        frame: NDArray[np.uint8],
        region: Region | None = None,
        *,
        class_ids: tuple[int, ...] | None = None,
    ) -> tuple[Detections, DetectTimings]:
        """Detections in full-frame pixels for ``frame`` (BGR uint8), or for ``region`` of it.

        ``class_ids`` keeps only those classes, before NMS (fewer boxes to suppress).
        """
        t0 = time.perf_counter()
        tensor, transform = self._letterboxer()(frame, region)
        t1 = time.perf_counter()
        output = self.infer(tensor)
        t2 = time.perf_counter()
        raw = self._decoder(output, self.score_threshold)
        boxes, scores, ids = raw.boxes, raw.scores, raw.class_ids
        if class_ids is not None and ids.shape[0]:
            wanted = np.isin(ids, np.asarray(class_ids, np.int64))
            boxes, scores, ids = boxes[wanted], scores[wanted], ids[wanted]
        keep = nms(boxes, scores, ids, self.nms_iou)
        frame_boxes = transform.to_frame(boxes[keep]) if keep.size else np.zeros((0, 4), np.float32)
        detections = Detections(frame_boxes, scores[keep], ids[keep], self.card.classes)
        t3 = time.perf_counter()
        return detections, DetectTimings((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)


_shared: dict[tuple[object, ...], Detector] = {}
_shared_lock = threading.Lock()


def shared_detector(
    registry: ModelRegistry,
    card_name: str,
    *,
    models_dir: Path | None = None,
    providers: tuple[str, ...] = DEFAULT_PROVIDERS,
    intra_op_threads: int = 1,
    score_threshold: float | None = None,
) -> Detector:
    """The process-wide detector for these settings, built (and its weights verified) on first use."""
    card = registry.card(card_name)
    weights = registry.resolve(card, models_dir)
    key = (card.name, card.sha256, str(weights), providers, intra_op_threads, score_threshold)
    with _shared_lock:
        detector = _shared.get(key)
        if detector is None:
            detector = Detector(
                card, weights, providers=providers, intra_op_threads=intra_op_threads,
                score_threshold=score_threshold,
            )
            _shared[key] = detector
        return detector
