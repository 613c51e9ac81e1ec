"""What a vectorised group costs besides its epochs, and what a second group of the same shape
saves: the programs of a shape are built once per trainer, so only the first group traces and
compiles them.

Trains ``--groups`` groups of K same-shape points one after the other in this process, as a warm
trainer does (``simulators.training.train_points``, JAX engine, adjoint probes on), and reports for
each: its wall time, its epochs' training programs (``fit_seconds``), the rest of its epochs
(validation, probes, the copy to the host), and the remainder, setup (task, models, checkpoints
and records outside the epochs); and the time to build one member's Keras model. JSON on request.

    KERAS_BACKEND=jax python benchmarks/group_setup.py --architecture gru --k 30 --json group_setup.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from generators.points import make_point  # noqa: E402
from hypers.fields import defaults  # noqa: E402
from simulators.models import build_model  # noqa: E402
from simulators.options import TrainingOptions  # noqa: E402
from simulators.records import read_json, write_json  # noqa: E402
from simulators.run_dir import SimDir  # noqa: E402
from simulators.training import load_task, train_points  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architecture", default="gru")
    parser.add_argument("--k", type=int, default=30, help="members of each group")
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20, help="of the adding task")
    parser.add_argument("--samples", type=int, default=256, help="training samples of the adding task")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def group_points(args, group: int) -> list[dict]:
    point = {**defaults(), "architecture": args.architecture, "dataset": "adding", "hidden_dim": args.hidden,
             "epochs": args.epochs, "batch_size": 128, "learning_rate": 1e-3}
    return [make_point(point, replicate=replicate, spec_seed=group) for replicate in range(args.k)]


def train_group(points: list[dict], options: TrainingOptions, root: Path) -> dict[str, float]:
    """One group's wall time and its parts, from its members' epoch records."""
    sim_dirs = [SimDir(root / point["identifier"]).make() for point in points]
    for point, sim_dir in zip(points, sim_dirs):
        write_json(sim_dir.point, point)
    started = time.perf_counter()
    train_points(sim_dirs, options)
    wall = time.perf_counter() - started
    epochs = read_json(sim_dirs[0].history)
    fits = sum(epoch["fit_seconds"] for epoch in epochs)
    rests = sum(epoch["seconds"] - epoch["fit_seconds"] for epoch in epochs)
    return {"wall_s": round(wall, 3), "training_s": round(fits, 3), "validation_s": round(rests, 3),
            "setup_s": round(wall - fits - rests, 3)}


def model_build_seconds(args, options: TrainingOptions, repeats: int = 10) -> float:
    data = load_task(group_points(args, 0)[0], options)
    started = time.perf_counter()
    for seed in range(repeats):
        build_model(args.architecture, args.hidden, seed, data)
    return round((time.perf_counter() - started) / repeats, 4)


def main(argv=None) -> int:
    import keras

    args = parse_args(argv)
    options = TrainingOptions(engine="jax", tasks={"adding": {"length": args.steps, "train_samples": args.samples,
                                                              "val_samples": 128}})
    with tempfile.TemporaryDirectory() as work:
        groups = [train_group(group_points(args, group), options, Path(work) / str(group))
                  for group in range(1, args.groups + 1)]
    report = {"environment": {"backend": keras.backend.backend(), "keras": keras.__version__,
                              "machine": platform.machine(), "python": platform.python_version()},
              "settings": {**vars(args), "json": str(args.json)},
              "model_build_s": model_build_seconds(args, options), "groups": groups}
    for number, group in enumerate(groups, 1):
        print(f"group {number}: " + ", ".join(f"{name} {value}" for name, value in group.items()))
    print(f"one member's model built in {report['model_build_s']} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
