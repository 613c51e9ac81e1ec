"""Dispatch rate and worker utilisation of taskgen's ensemble against plain libEnsemble, and the
per-training cost of process isolation.

Dispatch: for every workers x sim length x comms, two runs of the same sleep sims, each a
command of its own (under ``mpirun -np W+1`` for MPI comms):

- ``plain``: libEnsemble's persistent uniform sampler (``persistent_uniform``) and
  ``only_persistent_gens`` with a sim that sleeps, the generator on the manager;
- ``taskgen``: ``run_ensemble.py`` on a grid spec whose task sleeps (``benchmarks/sleep_task.py``
  through ``TASKGEN_PLUGINS``), so its generator, allocator (progress, history saves), sim
  function and per-training records all run, inline, without a backend.

From each history: ``rate`` = sims / span (first start to last end, the manager's clock) against
the ideal workers / seconds; ``util`` = sims x seconds / (workers x span), the busy share of the
workers while the ensemble runs; ``util_wall`` the same over the command's whole wall time
(process starts and imports included); ``latency`` the mean of (end - start - seconds) per sim.

Isolation: the same small real training (digits, rnn) run ``--isolation-sims`` times by one
worker in a warm trainer (``isolation: process``, the default), in a fresh process each
(``trainings_per_process: 1``) and ``inline``; overheads are differences of median per-sim times
against inline (see ``measure_isolation``).

    python benchmarks/ensemble_overhead.py --json overhead.json
    python benchmarks/ensemble_overhead.py --workers 4 128 --seconds 1 --comms local mpi --isolation-sims 0
    python benchmarks/ensemble_overhead.py --comms --isolation-sims 5     # process isolation only
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
import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.train_throughput import machine  # noqa: E402
from simulators.run_dir import RunDir  # noqa: E402

PLUGIN_ENV = {"TASKGEN_PLUGINS": "benchmarks.sleep_task", "PYTHONPATH": str(PROJECT_ROOT),
              "TF_CPP_MIN_LOG_LEVEL": "3"}
START_SLACK_S = 120  # a run's time limit beyond its sims: process starts, imports, shutdown


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[4, 16, 64, 128])
    parser.add_argument("--seconds", type=float, nargs="+", default=[0.1, 1.0, 10.0], help="sim lengths")
    parser.add_argument("--comms", nargs="*", default=["local", "mpi"], choices=["local", "mpi"],
                        help="no value: skip the dispatch runs")
    parser.add_argument("--kinds", nargs="+", default=["plain", "taskgen"], choices=["plain", "taskgen"])
    parser.add_argument("--sims-per-worker", type=int, default=3)
    parser.add_argument("--isolation-sims", type=int, default=4,
                        help="trainings per isolation mode (3 or more); 0 skips")
    parser.add_argument("--work-dir", type=Path, help="run directories; default a temporary one")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--plain-child", help=argparse.SUPPRESS)  # internal: one plain libEnsemble run
    return parser.parse_args(argv)


def sleep_sim(H, persis_info, sim_specs, libE_info):
    """The plain run's sim: sleep, return a value."""
    time.sleep(sim_specs["user"]["seconds"])
    out = np.zeros(len(H), dtype=sim_specs["out"])
    out["f"] = H["x"][:, 0]
    return out, persis_info


def plain_libensemble(settings: dict) -> None:
    """libEnsemble's own persistent sampler and allocator around ``sleep_sim``; the manager
    saves the history to ``settings["out"]``."""
    from libensemble.alloc_funcs.start_only_persistent import only_persistent_gens
    from libensemble.gen_funcs.persistent_sampling import persistent_uniform
    from libensemble.libE import libE
    from libensemble.tools import add_unique_random_streams

    comms = settings["comms"]
    workers = settings["workers"]
    libE_specs = {"comms": comms, "gen_on_manager": True, "workflow_dir_path": settings["out"],
                  "reuse_output_dir": True} | ({"nworkers": workers} if comms == "local" else {})
    H, _, _ = libE(
        {"sim_f": sleep_sim, "in": ["x"], "out": [("f", float)], "user": {"seconds": settings["seconds"]}},
        {"gen_f": persistent_uniform, "persis_in": ["sim_id"], "out": [("x", float, (1,))],
         "user": {"initial_batch_size": workers, "lb": np.zeros(1), "ub": np.ones(1)}},
        {"sim_max": settings["sims"]},
        add_unique_random_streams({}, workers + 1),
        {"alloc_f": only_persistent_gens, "user": {"async_return": True}},
        libE_specs,
    )
    if H is not None and (comms == "local" or _mpi_rank() == 0):
        RunDir(Path(settings["out"])).save_history(H)


def _mpi_rank() -> int:
    from mpi4py import MPI

    return MPI.COMM_WORLD.Get_rank()


def write_spec(path: Path, name: str, choices: dict, replicates: int, simulator: dict) -> Path:
    """A grid spec of one configuration times ``replicates``."""
    spec = {"name": name, "space": {"choices": choices, "replicates": replicates},
            "generator": {"kind": "grid", "seed": 0}, "simulator": simulator,
            "allocator": {"progress_interval": 5}}
    path.write_text(yaml.safe_dump(spec))
    return path


def launch(command: list[str], comms: str, workers: int) -> list[str]:
    return ["mpirun", "-np", str(workers + 1), *command] if comms == "mpi" else command


def dispatch_command(kind: str, comms: str, workers: int, seconds: float, sims: int, run_dir: Path) -> list[str]:
    if kind == "plain":
        settings = {"comms": comms, "workers": workers, "seconds": seconds, "sims": sims, "out": str(run_dir)}
        run_dir.mkdir(parents=True)
        return launch([sys.executable, __file__, "--plain-child", json.dumps(settings)], comms, workers)
    spec = write_spec(run_dir.parent / f"{run_dir.name}.yaml", "sleep", {"architecture": ["rnn"], "dataset": ["sleep"]},
                      sims,
                      {"isolation": "inline", "tasks": {"sleep": {"seconds": seconds}}})
    command = [sys.executable, "run_ensemble.py", "--spec", str(spec), "--out", str(run_dir), "--comms", comms]
    return launch(command + (["--nworkers", str(workers)] if comms == "local" else []), comms, workers)


def run_command(command: list[str], run_dir: Path, timeout: float) -> tuple[np.ndarray | None, float, float, str]:
    """(history, wall seconds, start time, error) of one run."""
    started = time.time()
    try:
        done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **PLUGIN_ENV})
    except subprocess.TimeoutExpired:
        return None, time.time() - started, started, f"timed out after {timeout:.0f} s"
    wall = time.time() - started
    history = RunDir(run_dir).history
    if done.returncode or not history.exists():
        return None, wall, started, (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    return np.load(history), wall, started, ""


def dispatch_metrics(H: np.ndarray, workers: int, seconds: float, wall: float, started: float) -> dict:
    ended = H[H["sim_ended"]]
    span = float(ended["sim_ended_time"].max() - ended["sim_started_time"].min())
    busy = len(ended) * seconds
    return {"sims": len(ended), "span_s": round(span, 2), "rate_per_s": round(len(ended) / span, 1),
            "ideal_rate_per_s": round(workers / seconds, 1), "util": round(busy / (workers * span), 3),
            "util_wall": round(busy / (workers * wall), 3), "wall_s": round(wall, 1),
            "startup_s": round(float(ended["sim_started_time"].min()) - started, 1),
            "latency_ms": round(1000 * (float(np.mean(ended["sim_ended_time"] - ended["sim_started_time"])) - seconds),
                                1)}


def measure_dispatch(kind: str, comms: str, workers: int, seconds: float, args, work_dir: Path) -> dict:
    sims = workers * args.sims_per_worker
    row = {"kind": kind, "comms": comms, "workers": workers, "seconds": seconds,
           "load_before": round(os.getloadavg()[0], 2)}
    run_dir = work_dir / f"{kind}-{comms}-{workers}-{seconds}"
    command = dispatch_command(kind, comms, workers, seconds, sims, run_dir)
    H, wall, started, error = run_command(command, run_dir, START_SLACK_S + 3 * args.sims_per_worker * seconds)
    return row | (dispatch_metrics(H, workers, seconds, wall, started) if H is not None else {"error": error})


ISOLATION_MODES = {  # simulator settings of each way to run the trainings
    "warm": {"isolation": "process"},  # the default: one trainer per worker, kept up between trainings
    "fresh": {"isolation": "process", "trainings_per_process": 1},  # a new process (and Keras import) per training
    "inline": {"isolation": "inline"},
}


def measure_isolation(args, work_dir: Path) -> dict:
    """Per-sim seconds of the same small training run by one worker in each isolation mode.
    Overheads are against inline's median (its first sim, which imports Keras, left out); the
    warm trainer's start is paid once per ``trainings_per_process`` trainings, so its overhead
    per training counts its steady state plus its start spread over as many trainings."""
    times = {}
    for mode, simulator in ISOLATION_MODES.items():
        run_dir = work_dir / f"isolation-{mode}"
        spec = write_spec(run_dir.parent / f"{run_dir.name}.yaml", "isolation",
                          {"architecture": ["rnn"], "dataset": ["digits"], "hidden_dim": [32]}, args.isolation_sims,
                          simulator | {"epochs": 1, "tasks": {"digits": {"train_samples": 384}}})
        command = [sys.executable, "run_ensemble.py", "--spec", str(spec), "--out", str(run_dir), "--nworkers", "1"]
        H, _, _, error = run_command(command, run_dir, START_SLACK_S + 60 * args.isolation_sims)
        if H is None:
            return {"error": f"{mode}: {error}"}
        H = np.sort(H, order="sim_started_time")
        times[mode] = (H["sim_ended_time"] - H["sim_started_time"]).tolist()
    inline = statistics.median(times["inline"][1:])
    fresh = statistics.median(times["fresh"]) - inline
    warm_steady = statistics.median(times["warm"][1:]) - inline
    warm_start = times["warm"][0] - times["inline"][0]  # both import Keras in their first sim
    from ensembles.schema import SimulatorSpec

    per_process = SimulatorSpec().trainings_per_process
    warm = warm_steady + warm_start / per_process
    return {"sims": args.isolation_sims, **{f"{mode}_s": [round(t, 2) for t in times[mode]] for mode in times},
            "inline_median_s": round(inline, 2), "fresh_overhead_s": round(fresh, 2),
            "fresh_overhead_of_60s_training": round(fresh / 60, 3), "warm_start_s": round(warm_start, 2),
            "warm_steady_overhead_s": round(warm_steady, 2), "trainings_per_process": per_process,
            "warm_overhead_s": round(warm, 3), "warm_overhead_of_60s_training": round(warm / 60, 4)}


DISPATCH_COLUMNS = ["comms", "workers", "seconds", "kind", "sims", "span_s", "rate_per_s", "ideal_rate_per_s", "util",
                    "util_wall", "startup_s", "latency_ms", "load_before"]


def print_dispatch(row: dict | None) -> None:
    """One run as a table line; None: the header."""
    if row is not None and "error" in row:
        print(f"{row['comms']:>8} {row['workers']:>8} {row['seconds']:>8} {row['kind']:>8}  error: {row['error']}")
        return
    print(" ".join(f"{name if row is None else str(row.get(name, '-')):>{max(8, len(name))}}"
                   for name in DISPATCH_COLUMNS), flush=True)


def environment() -> dict:
    import libensemble
    import mpi4py

    mpich = subprocess.run(["mpichversion", "--version"], capture_output=True, text=True).stdout.split(":")[-1].strip()
    return machine() | {"libensemble": libensemble.__version__, "mpi4py": mpi4py.__version__, "mpich": mpich}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.plain_child:
        plain_libensemble(json.loads(args.plain_child))
        return 0
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="ensemble_overhead-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    dispatch = []
    if args.comms:
        print_dispatch(None)
    for comms in args.comms:
        for seconds in args.seconds:
            for workers in args.workers:
                for kind in args.kinds:
                    dispatch.append(measure_dispatch(kind, comms, workers, seconds, args, work_dir))
                    print_dispatch(dispatch[-1])
    isolation = measure_isolation(args, work_dir) if args.isolation_sims else None
    if isolation:
        print("\nprocess isolation, per training:", json.dumps(isolation, indent=1))
    report = {"environment": environment(), "settings": vars(args) | {"json": str(args.json),
              "work_dir": str(work_dir)}, "dispatch": dispatch, "isolation": isolation}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
