"""The trainer as a command: one point in, its records in a directory out.

    python -m simulators.train --architecture lstm --dataset digits --epochs 2 --out DIR
    python -m simulators.train --point point.json --options options.json --out DIR
    python -m simulators.train --group group.json --options options.json   # vectorised, JAX engine

libEnsemble's executor runs it as a separate process per training (``isolation: process``),
so a crash, an out-of-memory kill or a timeout takes down one training, not its worker.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

from hypers.fields import DEFAULTS, validate_choice_value
from simulators.options import TrainingOptions
from simulators.records import read_json


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulators.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--point", type=Path, help="JSON file with the point's fields")
    parser.add_argument("--options", type=Path, help="JSON file with the training options")
    parser.add_argument("--group", type=Path,
                        help="JSON list of sim dirs, each with its point.json: one shape, trained together")
    parser.add_argument("--out", type=Path, help="directory for point/history/result JSON (not with --group)")
    parser.add_argument("--seed", type=int, default=0)
    for name, default in DEFAULTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, help=f"default {default}")
    parser.add_argument("--architecture")
    parser.add_argument("--dataset")
    return parser.parse_args(argv)


def _point_from_flags(args: argparse.Namespace) -> dict:
    if not args.architecture or not args.dataset:
        raise SystemExit("error: give --point FILE, or both --architecture and --dataset")
    point = {"seed": args.seed, "replicate": 0, "identifier": "standalone"}
    for name in ("architecture", "dataset", *DEFAULTS):
        raw = getattr(args, name)
        value = DEFAULTS[name] if raw is None else _typed(name, raw)
        try:
            point[name] = validate_choice_value(name, value)
        except ValueError as error:
            raise SystemExit(f"error: --{name.replace('_', '-')}: {error}") from None
    return point


def _typed(name: str, raw: str):
    if name == "permute":
        return raw.lower() in ("1", "true", "yes")
    if name in ("pad", "hidden_dim", "epochs", "batch_size"):
        return int(raw)
    return raw


def exit_with_worker(poll_seconds: float = 2.0) -> None:
    """A training orphaned by a killed worker stops instead of running on unrecorded."""
    worker = os.environ.get("TASKGEN_WORKER_PID")
    if not worker:
        return

    def watch() -> None:
        while os.getppid() == int(worker):
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-worker").start()


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if bool(args.group) == bool(args.out):
        raise SystemExit("error: give --out DIR for one training, or --group FILE for a group")
    exit_with_worker()
    options = TrainingOptions.model_validate(read_json(args.options) if args.options else {})

    from simulators.training import run_training, run_training_group

    if args.group:
        sim_dirs = [Path(sim_dir) for sim_dir in read_json(args.group)]
        results = run_training_group([read_json(sim_dir / "point.json") for sim_dir in sim_dirs], options, sim_dirs)
    else:
        sim_dirs = [args.out]
        results = [run_training(read_json(args.point) if args.point else _point_from_flags(args), options, args.out)]
    for result, sim_dir in zip(results, sim_dirs):
        print(f"{result['status']}: val_loss={result['val_loss']:.4g} val_accuracy={result['val_accuracy']:.4g} "
              f"epochs={result['epochs_completed']} in {result['train_seconds']:.1f}s -> {sim_dir}")
    return 0 if all(result["status"] in ("ok", "diverged") for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
