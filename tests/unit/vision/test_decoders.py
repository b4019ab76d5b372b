"""YOLOv5 and YOLOv8 output layouts, chosen by the card: synthetic tensors, then real ONNX models.

The ONNX models are built by the test itself with ``onnx.helper`` (the ``train`` extra installs
``onnx``): a graph whose output is a fixed tensor of the right layout (plus 0 x the input, so the
input is really consumed), run by onnxruntime through the same ``Detector`` a camera uses.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from edge.vision.decode import DECODERS, Yolov5Decoder, Yolov8Decoder, make_decoder
from edge.vision.detector import Detector
from models.registry import ModelCard, ModelRegistry

CLASSES = ["person", "e-bike", "car"]


def card_dict(decoder: str, *, activated: bool = True, name: str = "site", sha: str = "0" * 64,
              size: int = 64) -> dict[str, Any]:
    return {
        "name": name, "file": f"{name}.onnx", "sha256": sha, "licence": "Apache-2.0",
        "input": {"name": "images", "width": size, "height": size, "colour_order": "rgb",
                  "scale": 1 / 255, "letterbox": {"anchor": "center", "pad_value": 114}},
        "output": {"name": "output", "decoder": decoder, "scores_activated": activated},
        "score_threshold": 0.3, "classes": CLASSES, "roles": {"ebike": ["e-bike"], "vehicle": ["car"]},
    }


def v5_rows() -> np.ndarray:
    """Three candidates: an e-bike (0.9 x 0.8), a car below threshold (0.5 x 0.5), one low objectness."""
    rows = np.zeros((6, 5 + len(CLASSES)), np.float32)
    rows[0, :5] = (32, 32, 16, 8, 0.9)
    rows[0, 5 + 1] = 0.8
    rows[1, :5] = (10, 10, 4, 4, 0.5)
    rows[1, 5 + 2] = 0.5
    rows[2, :5] = (50, 50, 8, 8, 0.1)
    rows[2, 5 + 0] = 1.0
    return rows


def v8_rows() -> np.ndarray:
    """Same idea without objectness: an e-bike at 0.7, a car at 0.2 (below threshold)."""
    rows = np.zeros((5, 4 + len(CLASSES)), np.float32)
    rows[0, :4] = (32, 32, 16, 8)
    rows[0, 4 + 1] = 0.7
    rows[1, :4] = (10, 10, 4, 4)
    rows[1, 4 + 2] = 0.2
    return rows


def logit(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(p) - np.log1p(-p)


def test_yolov5_rows_decode_to_xyxy_with_obj_times_class() -> None:
    decoder = Yolov5Decoder(ModelCard.model_validate(card_dict("yolov5")))
    raw = decoder(v5_rows()[None], 0.3)
    np.testing.assert_allclose(raw.boxes, [[24, 28, 40, 36]])
    np.testing.assert_allclose(raw.scores, [0.72], atol=1e-6)
    assert raw.class_ids.tolist() == [1]


def test_yolov5_logits_are_activated_when_the_card_says_so() -> None:
    rows = v5_rows()
    rows[:, 4:] = logit(np.clip(rows[:, 4:], 1e-6, 1 - 1e-6))
    raw = Yolov5Decoder(ModelCard.model_validate(card_dict("yolov5", activated=False)))(rows[None], 0.3)
    np.testing.assert_allclose(raw.scores, [0.72], atol=1e-4)
    np.testing.assert_allclose(raw.boxes, [[24, 28, 40, 36]])


def test_yolov8_columns_and_their_transpose_decode_alike() -> None:
    decoder = Yolov8Decoder(ModelCard.model_validate(card_dict("yolov8")))
    as_exported = decoder(v8_rows().T[None].copy(), 0.3)  # [1, 4 + C, N]
    transposed = decoder(v8_rows()[None], 0.3)  # [1, N, 4 + C]
    for raw in (as_exported, transposed):
        np.testing.assert_allclose(raw.boxes, [[24, 28, 40, 36]])
        np.testing.assert_allclose(raw.scores, [0.7], atol=1e-6)
        assert raw.class_ids.tolist() == [1]


@pytest.mark.parametrize(("decoder", "shape"), [("yolov5", (1, 10, 7)), ("yolov8", (1, 6, 10)),
                                                ("yolov5", (10, 8))])
def test_wrong_layout_names_the_model_and_the_expected_shape(decoder: str, shape: tuple[int, ...]) -> None:
    decode = make_decoder(ModelCard.model_validate(card_dict(decoder)))
    with pytest.raises(ValueError, match=r"model 'site': .* expected \[1, "):
        decode(np.zeros(shape, np.float32), 0.3)


def test_unknown_decoder_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: yolov5, yolov8, yolox"):
        make_decoder(ModelCard.model_validate(card_dict("ssd")))
    assert {"yolox", "yolov5", "yolov8"} <= set(DECODERS)


# -- end to end through onnxruntime ----------------------------------------------------------------


def constant_model(path: Path, output: np.ndarray, size: int = 64) -> None:
    """An ONNX model: images [1, 3, size, size] -> output = constant + 0 * sum(images)."""
    onnx = pytest.importorskip("onnx")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    const = numpy_helper.from_array(output.astype(np.float32), name="const")
    zero = numpy_helper.from_array(np.zeros((), np.float32), name="zero")
    nodes = [
        helper.make_node("ReduceSum", ["images"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Add", ["const", "nothing"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "constant_head",
        [helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, list(output.shape))],
        initializer=[const, zero],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


@pytest.mark.parametrize(("decoder", "output"), [
    ("yolov5", v5_rows()[None]),
    ("yolov8", v8_rows().T[None].copy()),
])
def test_card_selects_the_decoder_end_to_end(tmp_path: Path, decoder: str, output: np.ndarray) -> None:
    weights = tmp_path / f"site_{decoder}.onnx"
    constant_model(weights, output)
    cards = tmp_path / "cards"
    cards.mkdir()
    raw = card_dict(decoder, name=f"site_{decoder}", sha=hashlib.sha256(weights.read_bytes()).hexdigest())
    (cards / f"site_{decoder}.yaml").write_text(yaml.safe_dump(raw))
    registry = ModelRegistry(cards_dirs=[cards], models_dir=tmp_path)
    card = registry.card(f"site_{decoder}")
    detector = Detector(card, registry.resolve(card))
    # A 128 x 64 frame letterboxed into 64 x 64: scale 0.5, centred, 16 px of padding above and below.
    frame = np.full((64, 128, 3), 90, np.uint8)
    detections, _ = detector.detect(frame)
    boxes = detections.to_boxes()
    assert [b.label for b in boxes] == ["e-bike"]
    # model (24, 28, 40, 36) -> frame ((24 - 0) / 0.5, (28 - 16) / 0.5, ...)
    assert (boxes[0].x1, boxes[0].y1, boxes[0].x2, boxes[0].y2) == pytest.approx((48, 24, 80, 40))
