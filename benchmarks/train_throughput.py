"""Training throughput of every architecture on sequential-MNIST-shaped inputs.

For each architecture x hidden size x batch size x engine: seconds to the end of the first epoch
beyond a steady one (compile and tracing), steady-state training samples/s, the implied
wall time of one 60,000-sample sequential MNIST epoch, and peak memory. Synthetic data of the
real shape (784 steps x 1 feature, 10 classes) so it runs anywhere; the numbers go to a table
on stdout and to JSON with the machine, backend and versions.

    python benchmarks/train_throughput.py --hidden 128 --batch 32 128 --json out.json
    KERAS_BACKEND=jax python benchmarks/train_throughput.py --engines fit jax   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulators.architectures import ARCHITECTURE_NAMES  # noqa: E402

SMNIST_SAMPLES = 60_000


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architectures", nargs="+", default=list(ARCHITECTURE_NAMES), choices=ARCHITECTURE_NAMES)
    parser.add_argument("--steps", type=int, default=784)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128])
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--batches", type=int, default=20, help="batches per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="the first compiles, the rest are timed")
    parser.add_argument("--engines", nargs="+", default=["fit"], choices=["fit", "jax"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def environment() -> dict:
    import keras

    info = {"backend": keras.backend.backend(), "keras": keras.__version__, "python": platform.python_version(),
            "machine": platform.node(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count()}
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


def measure(architecture: str, hidden: int, batch: int, engine_name: str, args) -> dict:
    from simulators.engines import Plan, engine
    from simulators.models import build_model
    from simulators.tasks.base import TaskData

    rng = np.random.default_rng(0)
    samples = batch * args.batches
    x = rng.uniform(size=(samples, args.steps, 1)).astype("float32")
    y = rng.integers(0, 10, size=samples).astype("int32")
    data = TaskData(x, y, x[:batch], y[:batch], objective="classification", n_classes=10)
    model = build_model(architecture, hidden, 0, data)
    seconds: list[float] = []
    started = time.perf_counter()
    engine(engine_name).train(
        model, data, Plan(epochs=args.epochs, batch_size=batch, learning_rate=1e-3, seed=0),
        lambda epoch, metrics: seconds.append(metrics["seconds"]) or True,
    )
    steady = statistics.median(seconds[1:])
    return {
        "architecture": architecture, "hidden": hidden, "batch": batch, "engine": engine_name,
        "compile_s": round(seconds[0] - steady, 2), "samples_per_s": round(samples / steady, 1),
        "smnist_epoch_s": round(SMNIST_SAMPLES / (samples / steady), 1),
        "peak_memory_mb": round(peak_memory_mb(), 1), "wall_s": round(time.perf_counter() - started, 1),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    results = []
    header = f"{'architecture':14} {'hidden':>6} {'batch':>5} {'engine':>6} {'compile s':>9} {'samples/s':>10} {'sMNIST epoch s':>14} {'peak MB':>8}"
    print(header, flush=True)
    for engine_name in args.engines:
        for hidden in args.hidden:
            for batch in args.batch:
                for architecture in args.architectures:
                    row = measure(architecture, hidden, batch, engine_name, args)
                    results.append(row)
                    print(f"{architecture:14} {hidden:>6} {batch:>5} {engine_name:>6} {row['compile_s']:>9} "
                          f"{row['samples_per_s']:>10} {row['smnist_epoch_s']:>14} {row['peak_memory_mb']:>8}", flush=True)
    report = {"environment": environment(), "settings": vars(args) | {"json": str(args.json)}, "results": results}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
