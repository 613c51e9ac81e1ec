"""Many trainings per GPU in one program: vectorised groups of K models on the JAX engine
against one Keras ``fit`` training per GPU.

For each architecture and K: total training samples/s of the group (784 steps x 1 feature,
hidden 128, batch 128 per member), and trainings/hour for a study-sized training (60,000
samples x 25 epochs). Prints a table, writes JSON (machine, versions, settings, results).

    KERAS_BACKEND=jax python benchmarks/gpu_ensemble.py --k 1 4 16 64 --json gpu_ensemble.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.train_throughput import environment, peak_memory_mb
from simulators.architectures import ARCHITECTURE_NAMES

STUDY_TRAINING_SAMPLES = 60_000 * 25  # sequential MNIST, the study's shorter epoch budget


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architectures", nargs="+", default=list(ARCHITECTURE_NAMES), choices=ARCHITECTURE_NAMES)
    parser.add_argument("--k", type=int, nargs="+", default=[1, 4, 16, 64], help="group sizes")
    parser.add_argument("--steps", type=int, default=784)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--batches", type=int, default=10, help="batches per epoch and member")
    parser.add_argument("--epochs", type=int, default=3, help="the first compiles, the rest are timed")
    parser.add_argument("--fit", action="store_true", help="also time one Keras fit training (K = 1)")
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def measure(architecture: str, k: int, engine_name: str, args) -> dict:
    from simulators.engines import Plan, engine
    from simulators.engines.jax_step import train_group
    from simulators.engines.member import Member
    from simulators.models import build_model
    from simulators.tasks.base import TaskData

    rng = np.random.default_rng(0)
    samples = args.batch * args.batches
    x = rng.uniform(size=(samples, args.steps, 1)).astype("float32")
    y = rng.integers(0, 10, size=samples).astype("int32")
    data = TaskData(x, y, x[: args.batch], y[: args.batch], objective="classification", n_classes=10)
    seconds: list[float] = []

    def record(epoch, metrics):
        if len(seconds) < epoch:
            seconds.append(metrics["seconds"])
        return True

    members = [
        Member(build_model(architecture, args.hidden, seed, data),
               Plan(epochs=args.epochs, batch_size=args.batch, learning_rate=1e-3 * (1 + seed), seed=seed), record)
        for seed in range(k)
    ]
    started = time.perf_counter()
    if engine_name == "fit":
        engine("fit").train(members[0].model, data, members[0].plan, record)
    else:
        train_group(members, data)
    steady = statistics.median(seconds[1:])
    total = k * samples / steady
    return {
        "architecture": architecture, "engine": engine_name, "k": k, "samples_per_s": round(total, 1),
        "per_member_samples_per_s": round(total / k, 1),
        "trainings_per_hour": round(3600 * total / STUDY_TRAINING_SAMPLES, 2),
        # the GPU's peak so far in this process: run one architecture per process to read each K's
        "compile_s": round(seconds[0] - steady, 2), "peak_memory_mb": round(peak_memory_mb(), 1),
        "wall_s": round(time.perf_counter() - started, 1),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    runs = [("fit", 1)] * args.fit + [("jax", k) for k in args.k]
    print(f"{'architecture':14} {'engine':>6} {'K':>3} {'samples/s':>10} {'per member':>10} "
          f"{'trainings/h':>11} {'compile s':>9} {'peak MB':>8}", flush=True)
    results = []
    for architecture in args.architectures:
        for engine_name, k in runs:
            try:
                row = measure(architecture, k, engine_name, args)
            except Exception as error:  # noqa: BLE001 - an out-of-memory K is a result too
                row = {"architecture": architecture, "engine": engine_name, "k": k, "error": str(error)[:200]}
                print(f"{architecture:14} {engine_name:>6} {k:>3} failed: {row['error']}", flush=True)
                results.append(row)
                continue
            results.append(row)
            print(f"{architecture:14} {engine_name:>6} {k:>3} {row['samples_per_s']:>10} "
                  f"{row['per_member_samples_per_s']:>10} "
                  f"{row['trainings_per_hour']:>11} {row['compile_s']:>9} {row['peak_memory_mb']:>8}", flush=True)
    if args.json:
        settings = vars(args) | {"json": str(args.json)}
        args.json.write_text(json.dumps({"environment": environment(), "settings": settings,
                                         "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
