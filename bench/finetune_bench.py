"""Fine-tuning on the box's CPU: seconds per image-epoch and the recall it buys on a two-wheeler scenario.

Scenario (built here from the shared media, see ``tests/unit/training/scenes.py``): the real in-lift
e-bike of ``b1`` pasted at random scales, positions and mirrorings onto the estate street of ``a7``,
with the street's own car and person labelled too. The shipped YOLOX-Nano finds no two-wheeler on
the original lift frame (issue 11). The frames are labelled with their ground truth, a hold-out split
is kept aside (by frame-id hash, as on a gateway), the model is fine-tuned with the same ``Trainer``
that ``estate-edge train`` runs, and both models are scored by the gateway's own onnxruntime Detector.

Prints:
  BENCH finetune_s_per_image_epoch <s> s      mean optimiser-step time / batch (compile step excluded)
  BENCH finetune_recall_gain <r> recall        e-bike recall on the hold-out split at the card's
                                               threshold, after minus before
Caveat, said again in the output: one pasted e-bike instance, so hold-out recall measures learning
this site's object, not generalisation to unseen e-bikes. Never fails on speed.

    python bench/finetune_bench.py --images 60 --epochs 30      # the full run (minutes)
    python bench/finetune_bench.py --images 24 --epochs 3       # a short look
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.config.training import TrainingConfig
from edge.training.evaluate import evaluate
from edge.training.frames import FrameStore, validate_boxes
from edge.training.train import Trainer
from models.registry import ModelRegistry
from tests.unit.training.scenes import ebike_scenes

TORCH_REFERENCE_S = 0.09  # docs/tried-here.md: a nano detector at 416 px with torch on 2 free cores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60, help="composite frames in all (train + hold-out)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--size", type=int, default=416, help="training input size, px")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frozen-convs", type=int, default=40)
    parser.add_argument("--holdout", type=float, default=0.25)
    args = parser.parse_args()
    shared = Path(os.environ.get("EDGE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
    os.environ.setdefault("EDGE_MODELS_DIR", str(shared / "models"))
    registry = ModelRegistry()
    card = registry.card("yolox_nano")
    weights = registry.resolve(card)
    with tempfile.TemporaryDirectory(prefix="finetune-bench-") as tmp:
        root = Path(tmp)
        store = FrameStore(root, 1 << 30)
        t0 = datetime(2026, 11, 27, tzinfo=UTC)
        for i, scene in enumerate(ebike_scenes(shared, args.images, seed=2026)):
            record = store.add("bench-cam", scene.jpeg, reason="zone_occupied", width=scene.width,
                               height=scene.height, ts=t0 + timedelta(seconds=i))
            assert record is not None
            store.save_labels("bench-cam", record.frame_id,
                              validate_boxes(scene.boxes, scene.width, scene.height, f"scene {i}"), user="bench")
        records = store.frames()
        holdout = [r for r in records if r.split(args.holdout) == "holdout"]
        train = len(records) - len(holdout)
        config = TrainingConfig(input_size=args.size, batch_size=args.batch, epochs=args.epochs,
                                holdout_fraction=args.holdout, frozen_convs=args.frozen_convs,
                                checkpoint_every_s=3600)
        watched = {"ebike", "car", "person"}
        before = evaluate(card, weights, store, holdout, watched)
        started = time.perf_counter()
        result = Trainer(root, store, config, card, weights).run()
        wall = time.perf_counter() - started
        if result.card is None or result.weights is None:
            print(f"run ended {result.status} without a model", file=sys.stderr)
            return 1
        after = evaluate(result.card, result.weights, store, holdout, watched)
    print(f"# {train} training and {len(holdout)} hold-out frames, {args.epochs} epochs at {args.size} px, "
          f"batch {args.batch}, first {args.frozen_convs} convolutions frozen; {result.steps} steps in {wall:.0f} s "
          f"(compile included); loadavg {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for name in sorted(watched):
        b, a = before.classes[name], after.classes[name]
        print(f"# {name}: recall {b.recall:.2f} -> {a.recall:.2f}, AP50 {b.ap50:.2f} -> {a.ap50:.2f} "
              f"({a.labelled} labelled boxes)")
    print("# one pasted e-bike instance: hold-out recall shows the site's object learnt, not unseen e-bikes")
    if result.s_per_image_epoch is not None:
        print(f"BENCH finetune_s_per_image_epoch {result.s_per_image_epoch:.3f} s "
              f"baseline={TORCH_REFERENCE_S} target={TORCH_REFERENCE_S}")
    gain = after.classes["ebike"].recall - before.classes["ebike"].recall
    print(f"BENCH finetune_recall_gain {gain:.3f} recall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
