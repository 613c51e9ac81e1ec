"""Training throughput of every architecture on sequential-MNIST-shaped inputs.

For each architecture x hidden size x batch size x engine: seconds to the end of the first epoch
beyond a steady one (compile and tracing), steady-state training samples/s, the implied
wall time of one 60,000-sample sequential MNIST epoch, and peak memory. Synthetic data of the
real shape (784 steps x 1 feature, 10 classes) so it runs anywhere; the numbers go to a table
on stdout and to JSON with the machine, backend and versions.

``--baseline`` adds, in the same run, the research-code pattern taskgen replaces: the same
cells stepped by a Python loop unrolled into the train step's graph
(``benchmarks/unrolled_baseline.py``), trained by the same ``fit`` loop, and prints taskgen's
speed-up over it. Its graph grows with the sequence, and so does its compile time (minutes
for an LSTM at 784 steps): ``--baseline-steps`` measures it at shorter sequences too, and
``--cap`` bounds every measurement's wall time (a capped one reads "> cap"). A shorter
baseline's samples/s is scaled to ``--steps`` (its cost is linear in the steps) and marked
"est.". For rnn, lstm and gru taskgen's layer is Keras' built-in one, so its rows are the
built-in comparison.

Every measurement runs in a process of its own: compile time starts cold, peak memory is
that measurement's, and a capped one can be stopped. The load average before it is recorded,
to spot measurements disturbed by other work on the machine; samples per CPU-second and the
compile's CPU seconds (the process's user + system time) are what such work disturbs least.

    python benchmarks/train_throughput.py --hidden 128 --batch 32 128 --json out.json
    python benchmarks/train_throughput.py --baseline --baseline-steps 196 784 --cap 240 --json out.json
    KERAS_BACKEND=jax python benchmarks/train_throughput.py --engines fit jax   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from simulators.architectures import ARCHITECTURE_NAMES  # noqa: E402

SMNIST_SAMPLES = 60_000
ROW_PREFIX = "ROW "
TASKGEN, UNROLLED = "taskgen", "unrolled"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architectures", nargs="+", default=list(ARCHITECTURE_NAMES), choices=ARCHITECTURE_NAMES)
    parser.add_argument("--steps", type=int, default=784)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128])
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--batches", type=int, default=20, help="batches per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="the first compiles, the rest are timed")
    parser.add_argument("--engines", nargs="+", default=["fit"], choices=["fit", "jax"])
    parser.add_argument("--baseline", action="store_true", help="also measure the unrolled research-code baseline")
    parser.add_argument("--baseline-steps", type=int, nargs="+",
                        help="sequence lengths for the baseline; default --steps")
    parser.add_argument("--cap", type=float, help="wall-time limit of one measurement, seconds")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: measure one row in this process
    return parser.parse_args(argv)


def machine() -> dict:
    """What the numbers were measured on, without importing a backend."""
    return {"python": platform.python_version(), "machine": platform.node(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()}


def environment() -> dict:
    import keras

    info = {"backend": keras.backend.backend(), "keras": keras.__version__} | machine()
    if info["backend"] == "jax":
        import jax

        info |= {"jax": jax.__version__, "device": str(jax.devices()[0].device_kind)}
    elif info["backend"] == "tensorflow":
        import tensorflow as tf

        info |= {"tensorflow": tf.__version__, "device": "cpu" if not tf.config.list_physical_devices("GPU") else "gpu"}
    return info


def peak_memory_mb() -> float:
    """Device peak on a JAX accelerator, else the process's peak resident memory (cumulative)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            return stats["peak_bytes_in_use"] / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def builder(implementation: str):
    if implementation == UNROLLED:
        from benchmarks.unrolled_baseline import build_unrolled_model

        return build_unrolled_model
    from simulators.models import build_model

    return build_model


def measure(row: dict, args) -> dict:
    """Train ``row``'s model for ``args.epochs`` epochs and time them (in this process)."""
    from simulators.engines import Plan, engine
    from simulators.tasks.base import TaskData

    batch = row["batch"]
    rng = np.random.default_rng(0)
    samples = batch * args.batches
    x = rng.uniform(size=(samples, row["steps"], 1)).astype("float32")
    y = rng.integers(0, 10, size=samples).astype("int32")
    data = TaskData(x, y, x[:batch], y[:batch], objective="classification", n_classes=10)
    model = builder(row["implementation"])(row["architecture"], row["hidden"], 0, data)
    seconds: list[float] = []
    cpu_marks = [time.process_time()]

    def on_epoch(epoch, metrics):
        seconds.append(metrics["seconds"])
        cpu_marks.append(time.process_time())
        return True

    engine(row["engine"]).train(model, data, Plan(epochs=args.epochs, batch_size=batch, learning_rate=1e-3, seed=0),
                                on_epoch)
    steady = statistics.median(seconds[1:])
    steady_cpu = statistics.median(np.diff(cpu_marks)[1:])
    return row | {"compile_s": round(seconds[0] - steady, 2),
                  "compile_cpu_s": round(cpu_marks[1] - cpu_marks[0] - steady_cpu, 2),
                  "samples_per_s": round(samples / steady, 1),
                  "samples_per_cpu_s": round(samples / steady_cpu, 1),
                  "smnist_epoch_s": round(SMNIST_SAMPLES * steady / samples, 1),
                  "peak_memory_mb": round(peak_memory_mb(), 1)}


def run_row(row: dict, args) -> dict:
    """``measure`` in a fresh process, stopped after ``args.cap`` seconds."""
    command = [sys.executable, __file__, "--row", json.dumps(row), "--epochs", str(args.epochs),
               "--batches", str(args.batches)]
    row = row | {"load_before": round(os.getloadavg()[0], 2)}
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.cap,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    except subprocess.TimeoutExpired:
        return row | {"capped_after_s": args.cap}
    lines = [line for line in done.stdout.splitlines() if line.startswith(ROW_PREFIX)]
    if not lines:
        return row | {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1][len(ROW_PREFIX):]) | row | {"wall_s": round(time.perf_counter() - started, 1)}


def planned_rows(args) -> list[dict]:
    rows = []
    for hidden in args.hidden:
        for batch in args.batch:
            for architecture in args.architectures:
                base = {"architecture": architecture, "hidden": hidden, "batch": batch}
                rows += [base | {"implementation": TASKGEN, "engine": name, "steps": args.steps}
                         for name in args.engines]
                if args.baseline:
                    rows += [base | {"implementation": UNROLLED, "engine": "fit", "steps": steps}
                             for steps in args.baseline_steps or [args.steps]]
    return rows


def speedups(results: list[dict], steps: int) -> list[dict]:
    """Per architecture and size: taskgen's fit samples/s (wall and per CPU-second) over the
    baseline's, measured at full length where that finished, else at the longest shorter length
    scaled to full length (cost linear in the steps: an estimate), and both compile times."""
    table = []
    fitted = (r for r in results if r["implementation"] == TASKGEN and r["engine"] == "fit" and "samples_per_s" in r)
    for ours in fitted:
        same = [r for r in results if r["implementation"] == UNROLLED
                and all(r[k] == ours[k] for k in ("architecture", "hidden", "batch"))]
        measured = sorted((r for r in same if "samples_per_s" in r), key=lambda r: (r["steps"] == steps, r["steps"]))
        if not measured:
            continue
        reference, scale = measured[-1], measured[-1]["steps"] / steps
        full = [r for r in same if r["steps"] == steps]
        table.append({
            "architecture": ours["architecture"], "hidden": ours["hidden"], "batch": ours["batch"],
            "taskgen_samples_per_s": ours["samples_per_s"],
            "baseline_samples_per_s": round(reference["samples_per_s"] * scale, 1),
            "baseline_estimated_from_steps": None if reference["steps"] == steps else reference["steps"],
            "speedup": round(ours["samples_per_s"] / (reference["samples_per_s"] * scale), 2),
            "speedup_cpu": round(ours["samples_per_cpu_s"] / (reference["samples_per_cpu_s"] * scale), 2),
            "taskgen_compile_s": ours["compile_s"], "baseline_compile_s": _compile_text(full[0]) if full else None,
            "taskgen_compile_cpu_s": ours["compile_cpu_s"],
            "baseline_compile_cpu_s": full[0].get("compile_cpu_s") if full else None,
        })
    return table


def _compile_text(row: dict) -> str:
    if "capped_after_s" in row:
        return f"> {row['capped_after_s']:.0f}"
    return str(row.get("compile_s", row.get("error")))


def _cell(row: dict, name: str) -> str:
    if name == "compile_s":
        return _compile_text(row)
    return str(row.get(name, "-"))


COLUMNS = ["architecture", "hidden", "batch", "implementation", "engine", "steps", "compile_s", "compile_cpu_s",
           "samples_per_s", "samples_per_cpu_s", "smnist_epoch_s", "peak_memory_mb", "load_before"]


def print_row(row: dict | None) -> None:
    """One measurement as a table line; None: the header."""
    print(" ".join(f"{name if row is None else _cell(row, name):>14}" for name in COLUMNS), flush=True)


def print_speedups(table: list[dict]) -> None:
    print("\ntaskgen (fit) against the unrolled baseline")
    print(f"{'architecture':14} {'hidden':>6} {'batch':>5} {'taskgen/s':>10} {'baseline/s':>14} {'speed-up':>8} "
          f"{'per CPU-s':>9} {'compile s':>9} {'baseline compile s':>18} {'compile CPU-s':>13} {'baseline':>8}")
    for r in table:
        estimate = f" est.{r['baseline_estimated_from_steps']}" if r["baseline_estimated_from_steps"] else ""
        print(f"{r['architecture']:14} {r['hidden']:>6} {r['batch']:>5} {r['taskgen_samples_per_s']:>10} "
              f"{str(r['baseline_samples_per_s']) + estimate:>14} {r['speedup']:>8} {r['speedup_cpu']:>9} "
              f"{r['taskgen_compile_s']:>9} {str(r['baseline_compile_s']):>18} {r['taskgen_compile_cpu_s']:>13} "
              f"{str(r['baseline_compile_cpu_s']):>8}")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.row:
        print(ROW_PREFIX + json.dumps(measure(json.loads(args.row), args)), flush=True)
        return 0
    results = []
    print_row(None)
    for row in planned_rows(args):
        results.append(run_row(row, args))
        print_row(results[-1])
        write_report(args, results)  # a long run interrupted keeps what it measured
    table = write_report(args, results)
    if table:
        print_speedups(table)
    return 0


def write_report(args, results: list[dict]) -> list[dict]:
    table = speedups(results, args.steps)
    if args.json:
        report = {"environment": environment(), "settings": vars(args) | {"json": str(args.json)},
                  "results": results, "speedups": table}
        args.json.write_text(json.dumps(report, indent=1))
    return table


if __name__ == "__main__":
    sys.exit(main())
