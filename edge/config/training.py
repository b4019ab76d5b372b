"""Site-adaptive models: where candidate frames and fine-tuned models live, and how training may use the box.

Training shares a 2-core gateway with the analytics, so every limit here is a guard for the analytics:
the disk quota for collected frames, the nice level, the CPU share other processes may use before
training pauses, and the wall-clock budget of one ``estate-edge train`` run.
"""

from __future__ import annotations

from pydantic import Field

from edge.config.common import Section


class TrainingConfig(Section):
    # A str, not a Path: it is a folder the gateway creates and writes (like the store's), so the
    # "referenced files must exist" check of ``estate-edge check`` does not apply to it.
    dir: str | None = Field(
        None, min_length=1, description="Folder for collected frames, labels, checkpoints and fine-tuned models "
        "(created when needed); default: 'training' next to the store's database file."
    )
    collect: bool = Field(True, description="Keep candidate frames from the cameras for labelling.")
    quota_mb: float = Field(512, gt=0, le=1_000_000, description="Disk quota for collected frames, all cameras, MiB.")
    min_interval_s: float = Field(
        30.0, ge=0, le=86400, description="At most one automatically collected frame per camera and reason this often, s."
    )
    near_threshold_margin: float = Field(
        0.15, ge=0, le=1, description="A detection within this much above the score threshold is 'near' it."
    )
    input_size: int = Field(416, ge=64, le=1280, multiple_of=32, description="Training input size, px (square).")
    epochs: int = Field(60, ge=1, le=10_000, description="Passes over the training split.")
    batch_size: int = Field(8, ge=1, le=256, description="Images per optimiser step.")
    learning_rate: float = Field(2e-4, gt=0, le=1, description="Adam learning rate after warm-up.")
    frozen_convs: int = Field(
        40, ge=0, le=1000, description="Leading convolutions (the backbone's early stages) kept frozen: "
        "a quarter less CPU per step, and less over-fitting on a few hundred frames."
    )
    max_hours: float = Field(8.0, gt=0, le=168, description="Wall-clock budget of one training run, hours.")
    nice: int = Field(15, ge=0, le=19, description="Scheduling niceness the trainer gives itself.")
    pause_busy_fraction: float = Field(
        0.6, gt=0, le=1, description="Pause while other processes use more than this share of all cores."
    )
    checkpoint_every_s: float = Field(120.0, gt=0, le=86400, description="Seconds between checkpoints.")
    holdout_fraction: float = Field(0.2, gt=0, lt=1, description="Share of each camera's labelled frames held out.")
    min_holdout_frames: int = Field(3, ge=1, le=10_000, description="Fewer held-out frames than this: no decision.")
    min_gain: float = Field(0.0, ge=0, le=1, description="The new model must beat the active one by more than this.")
