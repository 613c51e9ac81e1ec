"""Wall time of one ensemble run, as a user runs it, and where it goes.

Runs ``python run_ensemble.py --spec SPEC`` (default ``ensembles/quick.yaml``) in a fresh run
directory and splits its wall time in two ways:

- on the wall clock: startup (command start to the first training dispatched: imports, spec,
  libEnsemble and its workers), the trainings, and shutdown (last result to exit: summary,
  history saved);
- in trainer-seconds, summed over trainings (they run in parallel, so these add up to about
  workers x the trainings' wall time): trainer process start and imports (a sim's time beyond
  the trainer's own ``train_seconds``), importing Keras and its backend (inside
  ``train_seconds``), data loading, compile (first epoch beyond a steady one), training (the
  epochs' seconds without compile), adjoint norms, checkpoint saving, and the rest (backend
  setup, model build, records).

Sim times, epoch times and ``train_seconds`` come from the run's records. The backend import,
data loading, adjoints and checkpoints are not recorded separately, so they are measured here
afterwards (once, once per dataset and per (architecture, dataset)), alone on the machine, and
scaled by the trainings and epochs: a lower bound of their cost in the run, where trainings
share the CPU.

    python benchmarks/end_to_end.py --json end_to_end.json
    python benchmarks/end_to_end.py --spec ensembles/quick.yaml --nworkers 2 --set simulator.epochs=2
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

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.train_throughput import environment  # noqa: E402
from ensembles.loading import DEFAULT_SPEC, load_spec  # noqa: E402
from ensembles.settings import training_options  # noqa: E402
from hypers.fields import point_from_row  # noqa: E402
from simulators.options import TrainingOptions  # noqa: E402
from simulators.records import read_json  # noqa: E402
from simulators.run_dir import RunDir, SimDir  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--nworkers", type=int, help="default: run_ensemble.py's (the machine's cores)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    parser.add_argument("--out", type=Path, help="the run directory (must not exist); default a temporary one")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def run(args) -> tuple[Path, float, float]:
    """(run directory, command start time, wall seconds) of the ensemble."""
    out = args.out or Path(tempfile.mkdtemp(prefix="end_to_end-")) / "run"
    command = [sys.executable, "run_ensemble.py", "--spec", str(args.spec), "--out", str(out)]
    command += ["--nworkers", str(args.nworkers)] if args.nworkers else []
    for assignment in args.overrides:
        command += ["--set", assignment]
    started = time.time()
    subprocess.run(command, cwd=PROJECT_ROOT, check=True, stdout=subprocess.DEVNULL)
    return out, started, time.time() - started


def wall_clock(H: np.ndarray, started: float, wall: float) -> dict:
    first, last = float(H["sim_started_time"].min()), float(H["sim_ended_time"].max())
    return {"wall_s": wall, "startup_s": first - started, "trainings_s": last - first,
            "shutdown_s": started + wall - last}


def recorded(H: np.ndarray, run_dir: Path) -> dict:
    """Trainer-seconds from the run's own records, summed over trainings."""
    totals = {"sims_s": 0.0, "process_start_and_imports_s": 0.0, "in_trainer_s": 0.0, "compile_s": 0.0,
              "training_s": 0.0}
    for row in H:
        epochs = [epoch["seconds"] for epoch in read_json(SimDir(run_dir / str(row["sim_dir"])).history)]
        compile_s = epochs[0] - statistics.median(epochs[1:]) if len(epochs) > 1 else 0.0
        sim = float(row["sim_ended_time"] - row["sim_started_time"])
        totals["sims_s"] += sim
        totals["process_start_and_imports_s"] += sim - float(row["train_seconds"])
        totals["in_trainer_s"] += float(row["train_seconds"])
        totals["compile_s"] += compile_s
        totals["training_s"] += sum(epochs) - compile_s
    return totals


def measured_apart(H: np.ndarray, options: TrainingOptions, trainers: int, fresh_each: bool) -> dict:
    """Backend import (once per trainer process started), data loading (once per worker and
    dataset: a warm trainer or an inline worker keeps it; per training in ``fresh_each``
    processes), adjoints and checkpoints of the run's trainings, timed here one at a time."""
    from simulators.adjoint import epoch_adjoints
    from simulators.checkpoints import save_checkpoint
    from simulators.models import build_model, loss_and_metrics
    from simulators.training import load_task

    totals = {"backend_import_s": backend_import_s() * trainers if trainers else 0.0, "data_loading_s": 0.0,
              "adjoints_s": 0.0, "checkpoints_s": 0.0}
    loads, loaded, costs = {}, set(), {}
    for row in H:
        point = point_from_row(row)
        if point["dataset"] not in loads:
            loads[point["dataset"]] = _timed(load_task, point, options)
        data_s, data = loads[point["dataset"]]
        where = (int(row["sim_worker"]), point["dataset"])
        if where in loaded and not fresh_each:
            data_s = 0.0
        loaded.add(where)
        key = (point["architecture"], point["dataset"], point["hidden_dim"])
        if key not in costs:
            model = build_model(point["architecture"], int(point["hidden_dim"]), 0, data,
                                options.architecture_options(point["architecture"]))
            loss, metrics = loss_and_metrics(data)
            model.compile(optimizer="adam", loss=loss, metrics=metrics)
            model.optimizer.build(model.trainable_variables)
            first, _ = _timed(epoch_adjoints, model, loss, data)
            steady, _ = _timed(epoch_adjoints, model, loss, data)
            with tempfile.TemporaryDirectory() as directory:
                save, _ = _timed(save_checkpoint, SimDir(Path(directory)).checkpoint, model, 1)
            costs[key] = (first, steady, save)
        first, steady, save = costs[key]
        epochs = int(row["epochs_completed"])
        totals["data_loading_s"] += data_s
        totals["adjoints_s"] += (first + steady * (epochs - 1)) if options.adjoints else 0.0
        totals["checkpoints_s"] += save * epochs if options.checkpoint_every else 0.0
    return totals


def backend_import_s() -> float:
    """Seconds a fresh process spends importing Keras and its backend (beyond Python's own start):
    every process-isolated training pays it inside ``train_seconds``."""
    def wall(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        return time.perf_counter() - started

    return wall("import keras; keras.ops.zeros(1)") - wall("pass")


def _timed(function, *arguments):
    started = time.perf_counter()
    result = function(*arguments)
    return time.perf_counter() - started, result


def print_breakdown(title: str, parts: dict, total: float) -> None:
    print(f"\n{title}")
    for name, seconds in parts.items():
        print(f"  {name.removesuffix('_s'):32} {seconds:9.1f} s {100 * seconds / total:6.1f} %")


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    spec = load_spec(args.spec, args.overrides, nworkers=args.nworkers)
    load_before = os.getloadavg()[0]
    run_dir, started, wall = run(args)
    H = np.load(RunDir(run_dir).history)
    clock = wall_clock(H, started, wall)
    trainer = recorded(H, run_dir)
    isolated = spec.simulator.isolation == "process"
    trainers = len(list(RunDir(run_dir).trainers.iterdir())) if isolated else 0
    apart = measured_apart(H, training_options(spec), trainers,
                           isolated and spec.simulator.trainings_per_process == 1)
    outside_epochs = trainer["in_trainer_s"] - trainer["compile_s"] - trainer["training_s"]
    split = {"process_start_and_imports_s": trainer["process_start_and_imports_s"], **apart,
             "compile_s": trainer["compile_s"], "training_s": trainer["training_s"],
             "rest_in_trainer_s": outside_epochs - sum(apart.values())}
    print(f"{spec.name}: {len(H)} trainings in {trainers} trainer processes, wall {wall:.1f} s "
          f"(load average before: {load_before:.2f})")
    print_breakdown("wall clock", {k: v for k, v in clock.items() if k != "wall_s"}, wall)
    print_breakdown(f"trainer-seconds (sum over trainings: {trainer['sims_s']:.1f} s)", split, trainer["sims_s"])
    report = {"environment": environment(), "settings": vars(args) | {"spec": str(args.spec), "json": str(args.json),
              "out": str(run_dir)}, "trainings": len(H), "trainer_processes": trainers, "load_before": load_before,
              "wall_clock": clock, "trainer_seconds": split | {"sims_s": trainer["sims_s"]}}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
