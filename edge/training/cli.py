"""``estate-edge train``: fine-tune the site model, then (``--activate``) validate it per camera and switch.

Runs in the foreground, niced, pausing while the analytics need the CPU; Ctrl-C or the time budget
checkpoints, and running the command again resumes. ``--activate`` edits the estate YAML in place
(backed up, validated like the panel does) for each camera where the new model wins on that camera's
hold-out labels; the daemon picks it up on its next reload (``systemctl reload estate-edge``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from edge.config import EstateConfig, load_config
from edge.errors import ConfigError, EdgeError

log = logging.getLogger("edge.training")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("train", help="fine-tune the site's detector on its labelled frames (on this CPU, "
                                     "niced, resumable); --activate switches cameras where it is better")
    p.add_argument("config")
    p.add_argument("--secrets", help="secrets file; default $EDGE_SECRETS_FILE or secrets.yaml beside the config")
    p.add_argument("--camera", help="start from this camera's model (default: the first camera's)")
    p.add_argument("--max-minutes", type=float, default=None, help="time budget (default: training.max_hours)")
    p.add_argument("--steps", type=int, default=None, help="stop after this many optimiser steps (a trial run)")
    p.add_argument("--new", action="store_true", help="start a new run instead of resuming the last one")
    p.add_argument("--activate", action="store_true", help="validate per camera and activate where better")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from edge.cli import _secrets_path
    from edge.logs import setup_logging

    setup_logging(args.log_level)
    try:
        config = load_config(Path(args.config), _secrets_path(args))
    except ConfigError as exc:
        print(f"{args.config}: refusing to train:", file=sys.stderr)
        for problem in exc.problems or [str(exc)]:
            print(f"  {problem}", file=sys.stderr)
        return 2
    try:
        return _train(args, config)
    except KeyboardInterrupt:
        print("estate-edge train: stopped; the checkpoint is saved, run it again to resume", file=sys.stderr)
        return 130
    except EdgeError as exc:
        print(f"estate-edge train: {exc}", file=sys.stderr)
        for problem in getattr(exc, "problems", None) or []:
            print(f"  {problem}", file=sys.stderr)
        return 1


def _train(args: argparse.Namespace, config: EstateConfig) -> int:
    from edge.training.activation import site_registry
    from edge.training.collect import training_dir
    from edge.training.frames import FrameStore
    from edge.training.pause import PauseGate, lower_priority
    from edge.training.train import Trainer

    settings = config.training
    root = training_dir(settings, config.store.path)
    niceness = lower_priority(settings.nice)
    cameras = [c for c in config.cameras if c.enabled]
    if args.camera:
        cameras = [c for c in cameras if c.id == args.camera]
        if not cameras:
            raise ConfigError(f"no enabled camera {args.camera!r} in {args.config}")
    registry = site_registry(root)
    model_ref = cameras[0].model if cameras else None
    base = registry.card(model_ref.card if model_ref else "yolox_nano")
    weights = registry.resolve(base, Path(model_ref.dir) if model_ref and model_ref.dir else None)
    frames = FrameStore(root, int(settings.quota_mb * 1024 * 1024))
    pause = PauseGate(root / "pause", settings.pause_busy_fraction)
    trainer = Trainer(root, frames, settings, base, weights, pause=pause)
    print(f"training from {base.name} in {root} (nice {niceness}; touch {root / 'pause'} to pause)")
    result = trainer.run(resume=not args.new, max_steps=args.steps,
                         max_seconds=args.max_minutes * 60 if args.max_minutes is not None else None)
    per_image = f"{result.s_per_image_epoch:.3f} s per image-epoch" if result.s_per_image_epoch else "no timing"
    print(f"run {result.run_id}: {result.status}, step {result.steps} of {result.total_steps}, {result.images} "
          f"images, {per_image}, paused {result.paused_s:.0f} s, last loss {result.final_loss}")
    if result.card is None:
        print("no model written yet: run again to continue")
        return 0
    print(f"model {result.card.name} sha256 {result.card.sha256} in {root / 'models'}")
    if args.activate:
        return asyncio.run(_activate_all(args, config, result.card.name))
    return 0


async def _activate_all(args: argparse.Namespace, config: EstateConfig, card_name: str) -> int:
    from edge.cli import _secrets_path
    from edge.panel.config_files import ConfigFiles
    from edge.panel.yaml_edit import YamlEditError, set_camera_field
    from edge.training.activation import ModelBook, ModelChoice, compare, current_choice, model_value, site_registry
    from edge.training.collect import training_dir
    from edge.training.frames import FrameStore

    settings = config.training
    root = training_dir(settings, config.store.path)
    registry = site_registry(root)
    candidate = registry.card(card_name)
    frames = FrameStore(root, int(settings.quota_mb * 1024 * 1024))
    files = ConfigFiles(Path(args.config), _secrets_path(args))
    book = ModelBook(root)
    changed = 0
    for camera in config.cameras:
        if not camera.enabled or not camera.zones:
            continue
        comparison = await asyncio.to_thread(compare, camera, candidate, root, frames, settings)
        book.record_comparison(comparison)
        print(f"camera {camera.id}: {comparison.reason}: "
              f"{'activating' if comparison.better else 'keeping ' + camera.model.card}")
        if not comparison.better:
            continue
        previous, _card, _weights = current_choice(camera, registry)
        choice = ModelChoice(candidate.name, str(root / "models"), candidate.sha256)
        try:
            await files.save(set_camera_field(files.read_text(), camera.id, "model", model_value(camera, choice)))
        except (ConfigError, YamlEditError) as exc:
            print(f"camera {camera.id}: config not changed: {exc}", file=sys.stderr)
            return 1
        book.activated(camera.id, previous, choice)
        changed += 1
    if changed:
        print(f"{changed} camera(s) switched in {args.config} (backup kept); reload the daemon to apply")
    return 0
