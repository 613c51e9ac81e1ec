"""Many trainings per GPU in one program: vectorised groups of K models on the JAX engine, and
the compute levers of the recurrence (precision of the products, scan unrolling, remat, and the
fused Pallas kernel in place of the scan for the architectures it covers: rnn, lstm,
antisymmetric, lipschitz, exponential and unicornn, where ``fused_kernel_fits``; the kernel column says
``scan*`` where a run asked for fused runs the scan).

For each architecture, K and lever setting: total training samples/s of the group (784 steps x
1 feature, hidden 128, batch 128 per member), the matrix FLOP/s that is (``flops_per_sample``)
and its fraction of the GPU's dense peak for that precision (measured here, 8192^3 products),
the device memory one member needs (XLA's analysis of its compiled epoch), and trainings/hour
for a study-sized training (60,000 samples x 25 epochs). Prints a table, writes JSON.

    KERAS_BACKEND=jax python benchmarks/gpu_ensemble.py --k 16 64 256 --precision float32 bfloat16 \\
        --unroll 1 8 --json gpu_ensemble.json
    KERAS_BACKEND=jax python benchmarks/gpu_ensemble.py --architectures lstm rnn --k 64 --kernel scan fused
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.train_throughput import environment
from simulators.architectures import ARCHITECTURE_NAMES
from simulators.architectures.compute import FUSED_ARCHITECTURES, Compute, fused_kernel_fits

STUDY_TRAINING_SAMPLES = 60_000 * 25  # sequential MNIST, the study's shorter epoch budget
# columns of the matrix a step multiplies the hidden state by (UnICORNN: its second layer's
# input projection, per step; its own recurrence is diagonal)
RECURRENT_COLUMNS = {"rnn": 1, "lstm": 4, "gru": 3, "antisymmetric": 1, "lipschitz": 2, "exponential": 1,
                     "unicornn": 1}


def flops_per_sample(architecture: str, steps: int, hidden: int, features: int = 1) -> float:
    """Matrix FLOPs of one training sample, forward and backward (3x the forward's 2 m n k): the
    recurrent product every step and the input projection; elementwise work not counted."""
    columns = RECURRENT_COLUMNS[architecture] * hidden
    return 3 * 2 * steps * columns * (hidden + features)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architectures", nargs="+", default=list(ARCHITECTURE_NAMES), choices=ARCHITECTURE_NAMES)
    parser.add_argument("--k", type=int, nargs="+", default=[1, 16, 64], help="group sizes")
    parser.add_argument("--precision", nargs="+", default=["float32"], choices=["float32", "bfloat16"])
    parser.add_argument("--unroll", type=int, nargs="+", default=[1], help="time steps per loop iteration")
    parser.add_argument("--remat", type=int, nargs="+", default=[0], choices=[0, 1])
    parser.add_argument("--kernel", nargs="+", default=["scan"], choices=["scan", "fused"],
                        help=f"what runs the time loop; fused: {', '.join(FUSED_ARCHITECTURES)} where "
                        "fused_kernel_fits (the others, and larger sizes, run the scan either way: scan* in the table)")
    parser.add_argument("--fused-launch", nargs="+", default=[], metavar="BLOCK:WARPS",
                        help="the fused kernel's batch rows per program and warps (0: Triton's default), "
                             "each measured in turn (default: each cell's own, fused.py)")
    parser.add_argument("--steps", type=int, default=784)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--batches", type=int, default=10, help="batches per epoch and member")
    parser.add_argument("--epochs", type=int, default=3, help="the first compiles, the rest are timed")
    parser.add_argument("--fit", action="store_true", help="also time one Keras fit training (K = 1)")
    parser.add_argument("--no-peak", dest="peak", action="store_false", help="skip measuring the matmul peak")
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def matmul_peak_tflops(precision: str, size: int = 8192, repeats: int = 10) -> float:
    """The device's dense matrix rate for ``precision``: a size^3 product, median of ``repeats``."""
    import jax
    import jax.numpy as jnp

    dtype = jnp.bfloat16 if precision == "bfloat16" else jnp.float32
    keys = jax.random.split(jax.random.PRNGKey(0))
    a, b = (jax.random.normal(key, (size, size), dtype) for key in keys)
    product = jax.jit(lambda a, b: a @ b)
    product(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        product(a, b).block_until_ready()
        times.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(times) / 1e12


def _task(args):
    from simulators.tasks.base import TaskData

    rng = np.random.default_rng(0)
    samples = args.batch * args.batches
    x = rng.uniform(size=(samples, args.steps, 1)).astype("float32")
    y = rng.integers(0, 10, size=samples).astype("int32")
    return TaskData(x, y, x[: args.batch], y[: args.batch], objective="classification", n_classes=10)


def group(architecture: str, k: int, compute: Compute, args):
    """K members of one shape on the benchmark's task (each its own seed and learning rate), the
    task, and each member's epoch times as they are recorded."""
    from simulators.engines import Plan
    from simulators.engines.member import Member
    from simulators.models import build_model

    data = _task(args)
    seconds: list[list[float]] = [[] for _ in range(k)]

    def recorder(member: int):
        def record(epoch, metrics):
            seconds[member].append(metrics["seconds"])
            return True
        return record

    members = [
        Member(build_model(architecture, args.hidden, seed, data, compute=compute),
               Plan(epochs=args.epochs, batch_size=args.batch, learning_rate=1e-3 * (1 + seed), seed=seed),
               recorder(seed))
        for seed in range(k)
    ]
    return members, data, seconds


def measure(architecture: str, k: int, engine_name: str, compute: Compute, args) -> dict:
    from simulators.engines import engine
    from simulators.engines.jax_step import train_group

    members, data, seconds = group(architecture, k, compute, args)
    started = time.perf_counter()
    size = None
    if engine_name == "fit":
        engine("fit").train(members[0].model, data, members[0].plan, members[0].on_epoch)
    else:
        size = train_group(members, data)  # in parts of what fits the device, where all do not
    trained = time.perf_counter() - started
    parts = list({times[0]: times for times in seconds}.values())  # a part's members record the same times
    steady = sum(statistics.median(times[1:]) for times in parts)  # an epoch of every part, one after another
    total = k * len(data.x_train) / steady
    return {
        "architecture": architecture, "engine": engine_name, "k": k, **compute._asdict(),
        "runs_fused": compute.kernel == "fused" and fused_kernel_fits(architecture, args.hidden, compute.precision),
        "samples_per_s": round(total, 1), "per_member_samples_per_s": round(total / k, 1),
        "tflops": round(total * flops_per_sample(architecture, args.steps, args.hidden) / 1e12, 2),
        "member_mb": None if size is None or size.member_mb is None else round(size.member_mb, 1),
        "members_per_program": size.members if size else 1,
        "trainings_per_hour": round(3600 * total / STUDY_TRAINING_SAMPLES, 2),
        # beyond the steady epochs: compiles (the sizing one, before the first epoch, included) and setup
        "compile_s": round(trained - sum(len(times) * statistics.median(times[1:]) for times in parts), 2),
        "wall_s": round(trained, 1),
    }


def _runs(args) -> list[tuple[str, int, Compute]]:
    levers = [Compute(precision, unroll, bool(remat), kernel) for precision, unroll, remat, kernel
              in itertools.product(args.precision, args.unroll, args.remat, args.kernel)]
    return [("fit", 1, Compute())] * args.fit + [("jax", k, compute) for k in args.k for compute in levers]


def fused_launch(setting: str | None, architecture: str) -> dict:
    """Set the fused kernel's launch of ``architecture``'s cell (``BLOCK:WARPS``, warps 0 for
    Triton's default; None: its own) for the runs that follow, and forget the programs built with
    another: they are cached by shape, not by launch."""
    from simulators import adjoint
    from simulators.architectures import fused
    from simulators.engines import jax_step

    if architecture not in fused.CELLS:
        return {}
    if setting is not None:
        block, warps = (int(value) for value in setting.split(":"))
        fused.CELLS[architecture] = fused.CELLS[architecture]._replace(batch_block=block, num_warps=warps or None)
    for cache in (jax_step._built_programs, jax_step._member_bytes, adjoint._group_probes):
        cache.clear()
    cell = fused.CELLS[architecture]
    return {"batch_block": cell.batch_block, "num_warps": cell.num_warps}


def _line(row: dict, peaks: dict) -> str:
    if "error" in row:
        return f"{row['architecture']:14} {row['engine']:>4} {row['k']:>4} failed: {row['error']}"
    peak = peaks.get(row["precision"])
    fraction = f"{100 * row['tflops'] / peak:5.1f}%" if peak else "     -"
    kernel = "scan*" if row["kernel"] == "fused" and not row.get("runs_fused") else row["kernel"]
    launch = f" {row['batch_block']}:{row['num_warps'] or 'default'}" if "batch_block" in row else ""
    return (f"{row['architecture']:14} {row['engine']:>4} {row['k']:>4} {row['precision']:>8} {row['unroll']:>3} "
            f"{int(row['remat']):>3} {kernel:>5} {row['samples_per_s']:>10} {row['tflops']:>7} {fraction} "
            f"{row['member_mb'] or '-':>8} {row['trainings_per_hour']:>9} {row['compile_s']:>7}{launch}")


def main(argv=None) -> int:
    args = parse_args(argv)
    peaks = {precision: round(matmul_peak_tflops(precision), 1) for precision in args.precision} if args.peak else {}
    print(f"dense matmul peak, TFLOP/s: {peaks}", flush=True)
    print(f"{'architecture':14} {'eng':>4} {'K':>4} {'precis.':>8} {'unr':>3} {'rem':>3} {'kern.':>5} "
          f"{'samples/s':>10} {'TFLOP/s':>7} {'peak%':>6} {'MB/memb':>8} {'trainings/h':>9} {'compile':>7}", flush=True)
    results = []
    launches = args.fused_launch or [None]
    for launch, architecture in itertools.product(launches, args.architectures):
        launched = fused_launch(launch, architecture)
        for engine_name, k, compute in _runs(args):
            if launch != launches[0] and not (compute.kernel == "fused" and launched):
                continue  # a launch changes the runs of a fused cell alone: the others ran with the first
            launched_here = launched if compute.kernel == "fused" else {}
            try:
                row = measure(architecture, k, engine_name, compute, args) | launched_here
            except Exception as error:  # noqa: BLE001 - an out-of-memory K is a result too
                row = {"architecture": architecture, "engine": engine_name, "k": k, **compute._asdict(),
                       **launched_here, "error": str(error)[:200]}
            results.append(row)
            print(_line(row, peaks), flush=True)
            if args.json:  # after every run: a lease cut short keeps what was measured
                args.json.write_text(json.dumps({"environment": environment(), "peak_tflops": peaks,
                                                 "settings": vars(args) | {"json": str(args.json)},
                                                 "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
