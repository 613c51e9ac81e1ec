"""Does taskgen learn as the published study's reference code did? The equal-protocol check.

scikit-learn digits (64 steps x 1, taskgen's fixed split), hidden 32, Adam at 1e-2, batch 32,
6 epochs, seeds 0, 1, 2; best validation accuracy, mean and sd per architecture, against the
reference code's numbers on the same protocol (``REFERENCE``: the study's code run on this
protocol by the session that filed the fidelity issue; its runs are not recorded here). Each
training is the trainer command a user runs:

    python -m simulators.train --architecture A --dataset digits --epochs 6 --hidden-dim 32 \\
        --learning-rate 1e-2 --seed S

``--engine fit`` (Keras' fit, TensorFlow), ``jax`` (the jitted step, KERAS_BACKEND=jax) or
``group`` (the three seeds of an architecture as one vectorised group, KERAS_BACKEND=jax). A mean
passes when it is within max(2 sd, 0.05) of the reference, sd the reference's.

    python benchmarks/fidelity.py --engine fit --json benchmarks/results/cpu_fidelity_fit.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from simulators.records import read_json, write_json  # noqa: E402
from simulators.run_dir import SimDir  # noqa: E402

SEEDS = (0, 1, 2)
PROTOCOL = {"dataset": "digits", "epochs": 6, "hidden_dim": 32, "learning_rate": 1e-2, "batch_size": 32}
# best validation accuracy of the study's reference code on this protocol: (mean, sd) over SEEDS
REFERENCE = {
    "rnn": (0.705, 0.035), "lstm": (0.676, 0.026), "gru": (0.710, 0.020), "antisymmetric": (0.460, 0.024),
    "lipschitz": (0.595, 0.061), "exponential": (0.928, 0.009), "unicornn": (0.480, 0.005),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=("fit", "jax", "group"), default="fit")
    parser.add_argument("--architectures", nargs="+", default=list(REFERENCE), choices=list(REFERENCE))
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def _trainer(argv: list[str], engine: str) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if engine != "fit":
        env["KERAS_BACKEND"] = "jax"
    done = subprocess.run([sys.executable, "-m", "simulators.train", *argv], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"simulators.train {' '.join(argv)} failed:\n{done.stderr[-2000:]}")


def _flags(architecture: str, seed: int) -> list[str]:
    flags = ["--architecture", architecture, "--seed", str(seed)]
    for name, value in PROTOCOL.items():
        flags += [f"--{name.replace('_', '-')}", str(value)]
    return flags


def best_accuracies(architecture: str, engine: str, work: Path) -> list[float]:
    """Best validation accuracy of each seed's training."""
    options = work / "options.json"
    write_json(options, {"engine": "fit" if engine == "fit" else "jax"})
    sim_dirs = [SimDir(work / f"{architecture}-{seed}") for seed in SEEDS]
    if engine == "group":
        for seed, sim_dir in zip(SEEDS, sim_dirs):
            point = {**PROTOCOL, "architecture": architecture, "seed": seed, "replicate": seed, "permute": False,
                     "pad": 0, "orientation": "none", "identifier": sim_dir.name, "resume_from": ""}
            write_json(sim_dir.make().point, point)
        write_json(work / "group.json", [str(sim_dir.path) for sim_dir in sim_dirs])
        _trainer(["--group", str(work / "group.json"), "--options", str(options)], engine)
    else:
        for seed, sim_dir in zip(SEEDS, sim_dirs):
            _trainer([*_flags(architecture, seed), "--options", str(options), "--out", str(sim_dir.path)], engine)
    return [read_json(sim_dir.result)["best_val_accuracy"] for sim_dir in sim_dirs]


def row(architecture: str, accuracies: list[float], seconds: float) -> dict:
    mean, sd = statistics.mean(accuracies), statistics.stdev(accuracies)
    reference_mean, reference_sd = REFERENCE[architecture]
    tolerance = max(2 * reference_sd, 0.05)
    return {"architecture": architecture, "accuracies": accuracies, "mean": round(mean, 4), "sd": round(sd, 4),
            "reference_mean": reference_mean, "reference_sd": reference_sd, "tolerance": tolerance,
            "within": abs(mean - reference_mean) <= tolerance, "seconds": round(seconds, 1)}


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = []
    print(f"{'architecture':14} {'taskgen':>13} {'reference':>13} {'within':>7}")
    for architecture in args.architectures:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="fidelity-") as work:
            accuracies = best_accuracies(architecture, args.engine, Path(work))
        rows.append(row(architecture, accuracies, time.perf_counter() - started))
        r = rows[-1]
        print(f"{architecture:14} {r['mean']:.3f} ± {r['sd']:.3f}   {r['reference_mean']:.3f} ± {r['reference_sd']:.3f}"
              f" {'yes' if r['within'] else 'NO':>7}", flush=True)
    if args.json:
        if args.engine != "fit":
            os.environ["KERAS_BACKEND"] = "jax"  # the trainers' backend, reported with its versions
        from benchmarks.train_throughput import environment

        report = {"environment": environment(), "engine": args.engine, "protocol": {**PROTOCOL, "seeds": SEEDS},
                  "results": rows}
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if all(r["within"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
