"""Where a vectorised group's time goes, without hardware counters: the compiled epoch's loops
(XLA's optimised HLO), the kernels each loop launches per iteration, and the measured time per
training step against K. A time step that costs the same at K=1 as at K=256, spread over a few
dozen kernels of a few microseconds each, is bound by kernel launches and the latency between
steps, not by arithmetic: the lever is fewer, fused kernels per step, not faster products.

    KERAS_BACKEND=jax python benchmarks/scan_profile.py --architectures lstm rnn --k 1 64 256 \\
        --json scan_profile.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.gpu_ensemble import flops_per_sample, group
from benchmarks.train_throughput import environment
from simulators.architectures import ARCHITECTURE_NAMES
from simulators.architectures.compute import Compute

# HLO instructions that launch nothing: structure, aliases and control flow.
NOT_KERNELS = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast", "while", "conditional", "call",
               "after-all", "opt-barrier", "partition-id", "replica-id"}
COMPUTATION = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$")
INSTRUCTION = re.compile(r"^\s+(?:ROOT )?%?[\w.\-]+ = (.*)$")
OPCODE = re.compile(r" ([a-z][a-z0-9\-]*)\(")
BODY = re.compile(r"body=%?([\w.\-]+)")
TRIP_COUNT = re.compile(r'"known_trip_count":\{"n":"(\d+)"')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architectures", nargs="+", default=["lstm", "rnn"], choices=ARCHITECTURE_NAMES)
    parser.add_argument("--k", type=int, nargs="+", default=[1, 64, 256], help="group sizes")
    parser.add_argument("--precision", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--unroll", type=int, default=1)
    parser.add_argument("--kernel", default="scan", choices=["scan", "fused"],
                        help="fused (rnn, lstm): on a GPU the time loop runs inside one Triton kernel, so no XLA "
                        "loop of --steps trips is found there (time_loops 0); compare step_ms")
    parser.add_argument("--steps", type=int, default=784)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--batches", type=int, default=4, help="batches per epoch and member")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs after the first")
    parser.set_defaults(epochs=1)  # the members' plan; the epoch program runs repeats + 1 times
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def loops(hlo: str) -> list[dict]:
    """Every while loop of an optimised HLO module: its trip count (where XLA knows it) and the
    kernels its body launches per iteration (top-level instructions that are not structure)."""
    kernels: dict[str, int] = {}
    found: list[tuple[str, int | None]] = []
    current = None
    for line in hlo.splitlines():
        if header := COMPUTATION.match(line):
            current = header.group(1)
            kernels[current] = 0
            continue
        instruction = INSTRUCTION.match(line)
        if current is None or not instruction:
            continue
        opcode = OPCODE.search(" " + instruction.group(1))
        if opcode and opcode.group(1) not in NOT_KERNELS:
            kernels[current] += 1
        if opcode and opcode.group(1) == "while":
            trips = TRIP_COUNT.search(line)
            found.append((BODY.search(line).group(1), int(trips.group(1)) if trips else None))
    return [{"body": body, "trip_count": trips, "kernels_per_iteration": kernels.get(body, 0)}
            for body, trips in found]


def profile(architecture: str, k: int, compute: Compute, args) -> dict:
    import jax

    from simulators.engines.jax_step import epoch_program, prepare

    members, data, _ = group(architecture, k, compute, args)
    train_epoch, arguments = epoch_program(members, data, prepare(members, data))
    compiled = train_epoch.lower(*arguments).compile()
    jax.block_until_ready(compiled(*arguments))
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        jax.block_until_ready(compiled(*arguments))
        times.append(time.perf_counter() - started)
    step_s = statistics.median(times) / args.batches
    found = loops(compiled.as_text())
    time_loops = [loop for loop in found if loop["trip_count"] == args.steps // compute.unroll]
    kernels_per_step = sum(loop["kernels_per_iteration"] * loop["trip_count"] for loop in time_loops)
    samples_per_s = k * args.batch / step_s
    return {
        "architecture": architecture, "k": k, **compute._asdict(),
        "step_ms": round(1e3 * step_s, 3),
        "time_step_us": round(1e6 * step_s / args.steps, 2),  # forward and backward of one of the 784
        "time_loops": len(time_loops),
        "kernels_per_time_step": round(kernels_per_step / args.steps, 1),
        "us_per_kernel": round(1e6 * step_s / kernels_per_step, 2) if kernels_per_step else None,
        "samples_per_s": round(samples_per_s, 1),
        "tflops": round(samples_per_s * flops_per_sample(architecture, args.steps, args.hidden) / 1e12, 2),
        "loops": found,
    }


def _line(row: dict) -> str:
    if "error" in row:
        return f"{row['architecture']:14} {row['k']:>4} failed: {row['error']}"
    return (f"{row['architecture']:14} {row['k']:>4} {row['step_ms']:>8} {row['time_step_us']:>7} "
            f"{row['time_loops']:>5} {row['kernels_per_time_step']:>6} {row['us_per_kernel'] or '-':>7} "
            f"{row['samples_per_s']:>10} {row['tflops']:>7}")


def main(argv=None) -> int:
    args = parse_args(argv)
    compute = Compute(args.precision, args.unroll, kernel=args.kernel)
    print(f"{'architecture':14} {'K':>4} {'step ms':>8} {'us/t':>7} {'loops':>5} {'kern/t':>6} {'us/kern':>7} "
          f"{'samples/s':>10} {'TFLOP/s':>7}", flush=True)
    results = []
    for architecture in args.architectures:
        for k in args.k:
            try:
                row = profile(architecture, k, compute, args)
            except Exception as error:  # noqa: BLE001 - a K whose program does not fit is a result too
                row = {"architecture": architecture, "k": k, **compute._asdict(), "error": str(error)[:200]}
            results.append(row)
            print(_line(row), flush=True)
            if args.json:  # after every row: a lease cut short keeps what was measured
                args.json.write_text(json.dumps({"environment": environment(), "settings": vars(args) | {
                    "json": str(args.json)}, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
