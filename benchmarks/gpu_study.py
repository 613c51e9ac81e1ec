"""A slice of a study, run as a user runs it (``run_ensemble.py``) on one GPU: the grid and an
asha search of the same space, both in vectorised groups. Against the kernel microbenchmark
(``gpu_ensemble.py``, the same K), how much of the GPU's training rate survives end to end; and
does asha reach the grid's conclusions, for what share of its GPU-seconds? And where the rest of
the workers' time went (``time_breakdown``, from the epoch records' wall times).

The task is offline, at the study's 784 steps, so it runs on a GPU node with no download: the
adding problem (``--task adding``), or a group's word problem (``--task group``, ``--task-option
group=cyclic`` ...), whose running labels grade the configurations where the adding problem leaves
most at chance. Reports, per run: trained samples / wall time, GPU-seconds and epochs; the
microbenchmark's rate for the same mix; and asha's choice per cell against the grid's (as
``asha_vs_grid.py`` decides). Writes JSON.

    KERAS_BACKEND=jax python benchmarks/gpu_study.py --out /tmp/gpu_study --k 16 --json gpu_study.json
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
from typing import NamedTuple

import numpy as np
import pandas as pd
import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.asha_vs_grid import CELL, CONFIGURATION, compare, epochs_trained, run  # noqa: E402
from benchmarks.train_throughput import machine  # noqa: E402
from simulators.records import Status, read_json  # noqa: E402
from simulators.run_dir import RunDir, SimDir  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the runs go to OUT/grid and OUT/asha")
    parser.add_argument("--architectures", nargs="+", default=["gru", "unicornn"])
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[3e-4, 1e-3, 3e-3, 1e-2, 3e-2])
    parser.add_argument("--replicates", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=9, help="the grid's epochs and asha's full budget")
    parser.add_argument("--task", default="adding", choices=["adding", "group"], help="an offline task")
    parser.add_argument("--task-option", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                        help="one of the task's options (simulators/tasks/TASK.py), beyond its length and samples")
    parser.add_argument("--samples", type=int, default=25_600, help="the task's training samples")
    parser.add_argument("--steps", type=int, default=784, help="the task's length")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--k", type=int, default=16, help="group_size")
    parser.add_argument("--sims-per-gpu", type=int, default=1, help="grouped sims sharing the GPU (workers)")
    parser.add_argument("--precision", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--unroll", type=int, default=1)
    parser.add_argument("--asha", nargs="+", action="append", metavar=("LABEL", "OVERRIDE"),
                        help="an asha run to OUT/LABEL with these --set overrides, compared with the grid; "
                             "repeatable (default: asha generator.eta=3 generator.min_budget=1)")
    parser.add_argument("--runs", nargs="+", default=["grid", "asha"], choices=["grid", "asha"],
                        help="which searches to run (asha's comparison needs both)")
    parser.add_argument("--no-microbenchmark", dest="microbenchmark", action="store_false",
                        help="skip the kernel's rates (and the ratio to them): a run for its scores alone")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.asha = args.asha or [["asha", "generator.eta=3", "generator.min_budget=1"]]
    return args


def study_spec(args) -> dict:
    return {
        "name": "gpu_study",
        "space": {"choices": {"architecture": args.architectures, "dataset": [args.task], "hidden_dim": [args.hidden],
                              "learning_rate": args.learning_rates}, "replicates": args.replicates},
        "generator": {"kind": "asha", "max_budget": args.epochs},
        "simulator": {"isolation": "process", "engine": "jax", "group_size": args.k, "epochs": args.epochs,
                      "batch_size": 128, "gpus_per_sim": 1, "sims_per_gpu": args.sims_per_gpu, "timeout": 3600,
                      "precision": args.precision, "scan_unroll": args.unroll,
                      "tasks": {args.task: {"length": args.steps, "train_samples": args.samples,
                                            "val_samples": 1024, **dict(args.task_option)}}},
        "resources": {"gpus_per_node": 1},
        "allocator": {"progress_interval": 30},
    }


def timed_run(spec: Path, out: Path, args, overrides: list[str]) -> dict:
    started = time.perf_counter()
    frame = run(spec, out, args.sims_per_gpu, overrides)
    wall = time.perf_counter() - started
    epochs = epochs_trained(frame)
    failed = frame[frame["status"] == Status.FAILED]
    trained = groups(out)
    return {"frame": frame, "wall_s": round(wall, 1), "epochs": epochs, "trainings": len(frame),
            "sims_gpu_s": round(sims_gpu_seconds(frame, args.sims_per_gpu), 1),
            "samples_per_s": round(epochs * args.samples / wall, 1),
            "failures": failed.groupby("architecture")["error"].first().to_dict(),
            "diverged": frame[frame["status"] == Status.DIVERGED][
                ["architecture", "learning_rate", "replicate", "epochs", "resume_from"]].to_dict(orient="records"),
            "time_breakdown": time_breakdown(trained, args.sims_per_gpu * wall), "groups": group_timings(trained),
            "scores": scores(frame)}


def scores(frame: pd.DataFrame) -> list[dict]:
    """Each configuration's score at its largest budget (``epochs``: the grid's every training,
    asha's finalists; a configuration asha pruned, at its last rung): mean and spread over the
    replicates that did not diverge, how many trained and how many diverged. What tells whether
    a cell learns, and by what margin between configurations (the grid's ranking, which a
    divergence puts last, is ``compare``'s)."""
    final = frame[frame["epochs"] == frame.groupby(CELL + CONFIGURATION)["epochs"].transform("max")]
    final = final.assign(diverged=final["status"] == Status.DIVERGED,
                         finite=final["score"].where(np.isfinite(final["score"])))
    table = final.groupby([*CELL, *CONFIGURATION, "epochs"]).agg(
        mean=("finite", "mean"), std=("finite", "std"), count=("score", "size"), diverged=("diverged", "sum"))
    table = table.round(4).reset_index()
    return table.astype(object).where(table.notna(), None).to_dict(orient="records")  # NaN is not JSON


def sims_gpu_seconds(frame: pd.DataFrame, sims_per_gpu: int) -> float:
    """The GPU-seconds the run's sims held: each sim (a group: its rows share a ``priority``, the
    generators' number for it) held 1/``sims_per_gpu`` of the GPU from its first row's start to its
    last row's end. Against the wall time, this leaves out the slices no sim held (a chain's idle
    workers), which a study's other cells would fill."""
    started = frame[np.isfinite(frame["sim_started_time"])]  # a row never handed out has no start
    sims = started.groupby("priority").agg(start=("sim_started_time", "min"), end=("sim_ended_time", "max"))
    return float((sims["end"] - sims["start"]).sum()) / sims_per_gpu


def time_breakdown(trained: list[Group], worker_seconds: float) -> dict[str, float]:
    """Where the workers' time went, summed over the run's groups (``groups``), as shares of ``worker_seconds``
    (workers x wall time): ``training`` the epochs' training programs, ``compiling`` the first
    epoch of each part and phase beyond a later epoch of its part, ``validation`` validation,
    adjoint probes and the weights' copy to the host, ``setup`` the rest of a group's trainer time
    (task, models, sizing and the compile it does ahead of the first epoch, checkpoints and
    records; all of it for a group that trained no epoch), ``outside`` the rest (dispatch, the
    trainers' start, idle workers)."""
    totals = dict.fromkeys(("training", "compiling", "validation", "setup"), 0.0)
    for group in trained:
        fits = sum(epoch["fit_seconds"] for epoch in group.epochs)
        rests = sum(epoch["seconds"] for epoch in group.epochs) - fits
        compiling_fits, compiling_rests = _group_compiling(group.parts)
        totals["compiling"] += compiling_fits + compiling_rests
        totals["training"] += fits - compiling_fits
        totals["validation"] += rests - compiling_rests
        totals["setup"] += group.trainer_seconds - fits - rests
    totals["outside"] = worker_seconds - sum(totals.values())
    return {name: round(seconds / worker_seconds, 3) for name, seconds in totals.items()}


def group_timings(trained: list[Group]) -> list[dict]:
    """Per group (``groups``), in seconds: its trainer time, its epochs' (every part's), its parts (a group
    larger than the device holds trains in consecutive parts) and phases (members resumed from
    different epochs join as the others reach theirs), and their first epochs' excess over a later
    epoch of their part (whole, and its training program's; None where no epoch is later)."""
    timings = []
    for group in trained:
        told = all(any(not epoch["starts"] for epoch in part) for part in group.parts)
        training, rest = _group_compiling(group.parts)
        timings.append({"architecture": group.architecture, "members": group.members, "parts": len(group.parts),
                        "phases": sum(epoch["starts"] for epoch in group.epochs),
                        "trainer_s": round(group.trainer_seconds, 2),
                        "epochs_s": round(sum(epoch["seconds"] for epoch in group.epochs), 2),
                        "compiling_s": round(training + rest, 2) if told else None,
                        "training_compiling_s": round(training, 2) if told else None})
    return timings


def _group_compiling(parts: list[list[dict]]) -> tuple[float, float]:
    """A group's compiling over its parts (``_compiling``), in training programs and the rest."""
    fits, rests = zip(*map(_compiling, parts)) if parts else ((), ())
    return sum(fits), sum(rests)


def _compiling(part: list[dict]) -> tuple[float, float]:
    """Compiling in a part, in its training programs and in the rest of its epochs: the first epoch
    of each of its phases beyond the median of its epochs that begin none (none where every epoch
    begins one: nothing to compare with)."""
    later = [epoch for epoch in part if not epoch["starts"]]
    if not later:
        return 0.0, 0.0
    fit = statistics.median(epoch["fit_seconds"] for epoch in later)
    rest = statistics.median(epoch["seconds"] - epoch["fit_seconds"] for epoch in later)
    firsts = [epoch for epoch in part if epoch["starts"]]
    return (sum(max(0.0, epoch["fit_seconds"] - fit) for epoch in firsts),
            sum(max(0.0, epoch["seconds"] - epoch["fit_seconds"] - rest) for epoch in firsts))


class Group(NamedTuple):
    """A group of the run as its members' records tell it (``groups``)."""

    architecture: str
    members: int
    parts: list[list[dict]]  # each part's epochs, in order (none if it trained no epoch)
    trainer_seconds: float

    @property
    def epochs(self) -> list[dict]:
        return [epoch for part in self.parts for epoch in part]


def groups(run_dir: Path) -> list[Group]:
    """Each group of the run, read once from its members' records."""
    trained = []
    for sim_dir in RunDir(run_dir).sim_dirs():
        if sim_dir.group.exists():
            members = read_json(sim_dir.group)
            trained.append(Group(read_json(sim_dir.point)["architecture"], len(members), *_group_parts(members)))
    return trained


def _group_parts(members: list[str]) -> tuple[list[list[dict]], float]:
    """The epochs the group's programs ran, each once, in parts: the members a program trains
    record the same epoch wall times, so an epoch is known by (number, seconds), and a part is the
    epochs its members' histories link (members joining in phases share the epochs after they
    join; a member that diverged recorded fewer). ``starts`` marks an epoch that begins a member's
    own history here: its part's or a phase's first (a promoted member's history begins with its
    parent's epochs, which are not this group's). And the group's trainer time (its last member's
    ``train_seconds``)."""
    epochs, parts, seconds = {}, [], 0.0
    for member in members:
        sim_dir = SimDir(Path(member))
        point, history = read_json(sim_dir.point), read_json(sim_dir.history) if sim_dir.history.exists() else []
        inherited = len(read_json(sim_dir.sibling(point["resume_from"]).history)) if point.get("resume_from") else 0
        keys = []
        for position, epoch in enumerate(e for e in history[inherited:] if "fit_seconds" in e):
            key = (epoch["epoch"], epoch["seconds"])
            entry = epochs.setdefault(key, {**epoch, "starts": 0})
            entry["starts"] = entry["starts"] or int(position == 0)
            keys.append(key)
        if keys:  # the parts this member's epochs link become one
            linked = [part for part in parts if part & set(keys)]
            parts = [part for part in parts if part not in linked] + [set(keys).union(*linked)]
        if sim_dir.result.exists():
            seconds = max(seconds, read_json(sim_dir.result)["train_seconds"])
    return [sorted((epochs[key] for key in part), key=lambda epoch: epoch["epoch"]) for part in parts], seconds


def microbenchmark(args) -> tuple[dict, dict[str, float]]:
    """The device's environment and the kernel's samples/s per architecture for a group of K, the
    same shapes and levers. In a process of its own: JAX in this one would hold most of the GPU (it
    preallocates 75%) while the study's trainers run. An architecture it cannot measure ends the
    benchmark: without its rate, the ratio to the run's would mean nothing."""
    with tempfile.TemporaryDirectory() as work:
        result = Path(work) / "microbenchmark.json"
        subprocess.run([sys.executable, str(PROJECT_ROOT / "benchmarks" / "gpu_ensemble.py"), "--architectures",
                        *args.architectures, "--k", str(args.k), "--precision", args.precision, "--unroll",
                        str(args.unroll), "--steps", str(args.steps), "--hidden", str(args.hidden), "--batches", "10",
                        "--epochs", "3", "--no-peak", "--json", str(result)], check=True)
        measured = json.loads(result.read_text())
    rates = {row["architecture"]: row["samples_per_s"] for row in measured["results"] if "samples_per_s" in row}
    missing = set(args.architectures) - set(rates)
    if missing:
        raise SystemExit(f"the microbenchmark measured no rate for {', '.join(sorted(missing))}: see its output above")
    return measured["environment"], rates


def versions() -> dict:
    """The environment without the microbenchmark's device query (JAX asked for its devices in this
    process would take most of the GPU's memory from the study's trainers)."""
    from importlib.metadata import version

    return machine() | {"keras": version("keras"), "jax": version("jax")}


def ideal_rate(frame, rates: dict[str, float], samples: int) -> float:
    """samples/s of the run's trainings at the microbenchmark's rates, each architecture's epochs
    at its own rate: the run's rate with no overhead at all."""
    seconds = sum(epochs_trained(frame[frame["architecture"] == a]) * samples / rate for a, rate in rates.items())
    return epochs_trained(frame) * samples / seconds


def main(argv=None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    spec = args.out / "spec.yaml"
    spec.write_text(yaml.safe_dump(study_spec(args), sort_keys=False))
    device, rates = microbenchmark(args) if args.microbenchmark else (versions(), {})
    report = {"environment": device | {"XLA_FLAGS": os.environ.get("XLA_FLAGS", "")},
              "settings": vars(args) | {"out": str(args.out), "json": str(args.json)}, "microbenchmark": rates}
    runs = {"grid": ["generator.kind=grid", f"space.choices.epochs=[{args.epochs}]"]} if "grid" in args.runs else {}
    if "asha" in args.runs:
        runs |= {label: overrides for label, *overrides in args.asha}
    frames = {}
    for name, overrides in runs.items():  # each run is reported as it ends: a device lease may not see all
        result = timed_run(spec, args.out / name, args, overrides)
        frames[name] = result.pop("frame")
        if rates:
            result["microbenchmark_samples_per_s"] = round(ideal_rate(frames[name], rates, args.samples), 1)
        if name != "grid" and "grid" in frames:
            table = compare(frames["grid"], frames[name], args.epochs)
            result["cells"] = table.to_dict(orient="records")
        report[name] = result
        _print_run(name, result, report.get("grid"))
        _write(report, args.json)
    return 0


def _write(report: dict, path: Path | None) -> None:
    if path:
        path.write_text(json.dumps(report, indent=1, default=str))


def _print_run(name: str, r: dict, grid: dict | None) -> None:
    ideal = r.get("microbenchmark_samples_per_s")
    against = f" against {ideal} in the microbenchmark ({r['samples_per_s'] / ideal:.0%})" if ideal else ""
    print(f"{name}: {r['trainings']} trainings, {r['epochs']} epochs in {r['wall_s']} s: {r['samples_per_s']} "
          f"samples/s end to end{against}", flush=True)
    print(pd.DataFrame(r["scores"]).to_string(index=False), flush=True)
    shares = ", ".join(f"{part} {share:.0%}" for part, share in r["time_breakdown"].items())
    print(f"{name}: the workers' time: {shares}", flush=True)
    for architecture, error in r["failures"].items():
        print(f"{name}: {architecture} failed: {error}", flush=True)
    if "cells" in r:
        print(pd.DataFrame(r["cells"]).to_string(index=False))
        print(f"{name}: {r['wall_s'] / grid['wall_s']:.0%} of the grid's GPU-seconds (one GPU: its wall time), "
              f"{r['sims_gpu_s'] / grid['sims_gpu_s']:.0%} of those its sims held, "
              f"{r['epochs'] / grid['epochs']:.0%} of its epochs; choice within the grid's spread in "
              f"{sum(c['within_spread'] for c in r['cells'])}/{len(r['cells'])} cells", flush=True)


if __name__ == "__main__":
    sys.exit(main())
