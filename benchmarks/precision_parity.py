"""Does a bfloat16 or fused group learn what the float32 scan learns? Parity on three tasks, same seeds.

For each architecture, a vectorised group of ``--seeds`` trainings on digits, the copy task and
the adding problem, once on the reference path (float32 products, ``kernel: scan``) and once per
variant (``precision:kernel``, e.g. ``bfloat16:scan`` or ``float32:fused``): the best validation
accuracy (digits, copy) or the last validation MSE (adding), mean over the group, and whether the
variant is within 0.02 accuracy or 10% of the MSE. JAX engine; prints a table, writes JSON,
exits 1 if a pair is out of bounds.

    KERAS_BACKEND=jax python benchmarks/precision_parity.py --variants bfloat16:scan float32:fused --json parity.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.train_throughput import environment  # noqa: E402
from generators.points import make_point  # noqa: E402
from hypers.fields import defaults  # noqa: E402
from simulators.architectures.compute import fused_kernel_fits  # noqa: E402
from simulators.options import TrainingOptions  # noqa: E402
from simulators.records import write_json  # noqa: E402
from simulators.run_dir import SimDir  # noqa: E402
from simulators.training import train_points  # noqa: E402

TASKS = {
    "digits": {},
    "copy": {"symbols": 4, "length": 4, "delay": 20, "train_samples": 2048, "val_samples": 512},
    "adding": {"length": 50, "train_samples": 2048, "val_samples": 512},
}
ACCURACY_BOUND, MSE_BOUND = 0.02, 0.10
REFERENCE = "float32:scan"
VARIANTS = [f"{precision}:{kernel}" for precision in ("float32", "bfloat16") for kernel in ("scan", "fused")]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architectures", nargs="+", default=["lstm", "antisymmetric"])
    parser.add_argument("--datasets", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--variants", nargs="+", default=["bfloat16:scan"], choices=VARIANTS,
                        help="precision:kernel pairs compared with float32:scan")
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def group_score(architecture: str, dataset: str, variant: str, args, work: Path) -> float:
    """The group's mean best validation accuracy, or mean last validation MSE for adding."""
    precision, kernel = variant.split(":")
    options = TrainingOptions(engine="jax", precision=precision, kernel=kernel, adjoints=False,
                              tasks={dataset: TASKS[dataset]})
    points = [make_point({**defaults(), "architecture": architecture, "dataset": dataset, "hidden_dim": args.hidden,
                          "epochs": args.epochs, "learning_rate": 1e-2}, replicate=seed, spec_seed=0)
              for seed in range(args.seeds)]
    sim_dirs = [SimDir(work / variant.replace(":", "_") / point["identifier"]).make() for point in points]
    for point, sim_dir in zip(points, sim_dirs):
        write_json(sim_dir.point, point)
    results = train_points(sim_dirs, options)
    name = "val_loss" if dataset == "adding" else "best_val_accuracy"
    return statistics.mean(result[name] for result in results)


def within(dataset: str, reference: float, variant: float) -> bool:
    if dataset == "adding":
        return abs(variant - reference) <= MSE_BOUND * reference
    return abs(variant - reference) <= ACCURACY_BOUND


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = []
    print(f"{'architecture':14} {'dataset':8} {'variant':15} {REFERENCE:>14} {'variant':>9} {'within':>6}", flush=True)
    for architecture in args.architectures:
        for dataset in args.datasets:
            with tempfile.TemporaryDirectory() as work:
                reference = group_score(architecture, dataset, REFERENCE, args, Path(work))
                for variant in args.variants:
                    score = group_score(architecture, dataset, variant, args, Path(work))
                    precision, kernel = variant.split(":")
                    row = {"architecture": architecture, "dataset": dataset, "variant": variant,
                           "reference": reference, "score": score, "within": within(dataset, reference, score),
                           # a fused variant where the kernel does not apply compares the scan with itself
                           "fused": kernel == "fused" and fused_kernel_fits(architecture, args.hidden, precision)}
                    rows.append(row)
                    print(f"{architecture:14} {dataset:8} {variant:15} {reference:>14.4f} {score:>9.4f} "
                          f"{'yes' if row['within'] else 'NO':>6}", flush=True)
                    _write(rows, args)
    return 0 if all(row["within"] for row in rows) else 1


def _write(rows: list[dict], args) -> None:
    """After every row: a device lease cut short keeps what was measured."""
    if args.json:
        args.json.write_text(json.dumps({"environment": environment(), "settings": vars(args) | {
            "json": str(args.json)}, "results": rows}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
