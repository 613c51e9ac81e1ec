"""The resource plan ``--dry-run`` prints: how the ensemble will occupy the machine, and what it
will cost, before a single node-hour is spent."""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

from ensembles.schema import EnsembleSpec
from ensembles.settings import trainings_per_sim
from simulators.architectures.compute import FUSED_ARCHITECTURES, fused_kernel_fits

THROUGHPUT_FILE = Path(__file__).with_name("gpu_throughput.yaml")


def sims_per_node(spec: EnsembleSpec, cores_per_node: int) -> int:
    """Concurrent trainings one node holds: its GPU slots, or its cores split by threads."""
    simulator, resources = spec.simulator, spec.resources
    if simulator.gpus_per_sim and resources.gpus_per_node:
        return resources.gpus_per_node // simulator.gpus_per_sim * simulator.sims_per_gpu
    return max(1, cores_per_node // (simulator.threads or 1))


def resource_plan(spec: EnsembleSpec, nodes: int, workers: int | None, sim_seconds: float | None) -> str:
    cores = spec.resources.cores_per_node or os.cpu_count() or 1
    per_node = sims_per_node(spec, cores)
    workers = workers or spec.nworkers or min(per_node * nodes, os.cpu_count() or 1)
    concurrent = min(workers, per_node * nodes)
    grouped = trainings_per_sim(spec)
    points = spec.count_points()
    lines = [
        f"plan: {nodes} node(s), {workers} workers (MPI: {workers + 1} ranks), up to {per_node} sims per node",
        f"plan: {concurrent} sims at a time"
        + (f" of up to {grouped} trainings each (vectorised groups)" if grouped > 1 else "")
        + (f", {spec.simulator.sims_per_gpu} per GPU" if spec.simulator.gpus_per_sim else ", CPU only")
        + (f", {spec.simulator.threads} threads each" if spec.simulator.threads else ""),
    ]
    if grouped > 1 and spec.simulator.gpus_per_sim and spec.simulator.sims_per_gpu > 1:
        lines.append("plan: note: groups sharing a GPU; one group per GPU (sims_per_gpu: 1) trained faster on an "
                     "H200 (docs/performance.md, filling the GPU)")
    if concurrent < workers:
        lines.append(f"plan: warning: {workers - concurrent} workers will wait: the nodes hold {concurrent} sims")
    if sim_seconds:
        waves = math.ceil(points / (concurrent * grouped))
        hours = waves * sim_seconds / 3600
        lines.append(f"plan: {points} points x {sim_seconds:g} s per sim = {waves} waves, "
                     f"about {hours:.1f} h wall time and {hours * nodes:.1f} node-hours")
    gpu_line = gpu_hours_estimate(spec)
    if gpu_line:
        lines.append(gpu_line)
    fallback_line = fused_fallbacks(spec)
    if fallback_line:
        lines.append(fallback_line)
    return "\n".join(lines)


def fused_fallbacks(spec: EnsembleSpec) -> str | None:
    """Where ``kernel: fused`` will run the scan instead, said before the run rather than found in
    its speed: architectures without a fused cell, and sizes whose blocks a GPU program cannot hold."""
    if spec.simulator.kernel != "fused":
        return None
    precision = spec.simulator.precision
    configurations = list(spec.space.configurations(spec.point_defaults))
    without_cell = sorted({c["architecture"] for c in configurations} - set(FUSED_ARCHITECTURES))
    too_large: dict[str, set[int]] = {}
    for c in configurations:
        if c["architecture"] in FUSED_ARCHITECTURES and not fused_kernel_fits(c["architecture"], c["hidden_dim"],
                                                                              precision):
            too_large.setdefault(c["architecture"], set()).add(c["hidden_dim"])
    parts = ([f"{', '.join(without_cell)} (no fused cell)"] if without_cell else []) + (
        [", ".join(f"{a} at hidden {', '.join(map(str, sorted(h)))}" for a, h in sorted(too_large.items()))
         + f" (recurrent blocks over what a GPU program holds in {precision}: docs/performance.md)"]
        if too_large else [])
    return f"plan: kernel fused runs the scan for {' and for '.join(parts)}" if parts else None


def gpu_hours_estimate(spec: EnsembleSpec, throughput_file: Path = THROUGHPUT_FILE) -> str | None:
    """The plan's GPU-hour line, or None where nothing of the study was measured (no number is
    better than a guess). For asha: the epochs successive halving trains (its rungs over every
    competition) and, as the bound, every configuration through every rung."""
    table = yaml.safe_load(throughput_file.read_text())
    if spec.adaptive:
        hours, unmeasured = asha_gpu_hours(spec, table)
        bound, _ = asha_gpu_hours(spec, table, every_rung=True)
        what = (f"an asha search of {spec.count_configurations():,} configurations (at most {bound:,.1f} "
                f"GPU-hours if every one reached every rung)") if hours is not None else ""
    else:
        hours, unmeasured = gpu_hours(spec, table)
        what = f"{spec.count_points():,} trainings"
    if hours is None:
        return None
    line = (f"plan: GPU estimate: about {hours:,.1f} GPU-hours of training steps for {what} on {table['device']} "
            f"(engine jax in groups, batch 128, at the rates measured for {' else '.join(rate_sets(spec))}; "
            f"{throughput_file.name} says how)")
    if unmeasured:
        line += f"; not measured, counted at the others' mean: {', '.join(sorted(unmeasured))}"
    return line


def rate_sets(spec: EnsembleSpec) -> list[str]:
    """The throughput file's rate sets that apply to the spec's compute settings, first choice
    first: its precision with the fused kernel (where asked for), its precision, float32."""
    precision = spec.simulator.precision
    sets = [f"{precision}+fused"] if spec.simulator.kernel == "fused" else []
    return list(dict.fromkeys([*sets, precision, "float32"]))


def configuration_rate_sets(spec: EnsembleSpec, architecture: str, hidden: int) -> list[str]:
    """``rate_sets`` less the fused kernel's where it does not run this configuration (it runs the scan)."""
    fused = fused_kernel_fits(architecture, hidden, spec.simulator.precision)
    return [name for name in rate_sets(spec) if fused or not name.endswith("+fused")]


def seconds_per_sample(architecture: str, hidden: int, table: dict, sets: list[str]) -> float | None:
    """1 / samples/s of the first set that measured ``architecture`` over hidden sizes spanning
    ``hidden`` (else the first that measured it at all), interpolated between its sizes."""
    measured = [table["rates"][name]["samples_per_s"][architecture] for name in sets
                if architecture in table["rates"].get(name, {}).get("samples_per_s", {})]
    if not measured:
        return None
    rates = next((rates for rates in measured if min(rates) <= hidden <= max(rates)), measured[0])
    sizes = sorted(rates)
    return float(np.interp(hidden, sizes, [1 / rates[size] for size in sizes]))


def gpu_hours(spec: EnsembleSpec, table: dict) -> tuple[float | None, set[str]]:
    """Mean GPU time of the space's configurations times the study's trainings, from the
    throughput measured on one GPU: time grows with samples x epochs x steps (the scan is
    sequential in time); hidden sizes between the measured ones are interpolated."""
    costs, unmeasured = _per_configuration(spec, table, lambda configuration: configuration["epochs"])
    if not costs:
        return None, unmeasured
    return float(np.mean(costs)) * spec.count_points() / 3600, unmeasured


def asha_gpu_hours(spec: EnsembleSpec, table: dict, every_rung: bool = False) -> tuple[float | None, set[str]]:
    """GPU time of an asha search: each configuration's epochs as successive halving trains them
    in its competition (``halving_epochs``), or through every rung and as a finalist."""
    generator, budgets = spec.generator, spec.budgets
    competitions = Counter(tuple(c[name] for name in generator.group_by)
                           for c in spec.space.configurations(spec.point_defaults))
    leader = generator.replicate_finalists == "leader"
    per_configuration = {group: (budgets[-1] * spec.replicates if every_rung else
                                 halving_epochs(count, budgets, generator.eta, spec.replicates, generator.brackets,
                                                leader) / count) for group, count in competitions.items()}
    costs, unmeasured = _per_configuration(
        spec, table, lambda c: per_configuration[tuple(c[name] for name in generator.group_by)])
    if not costs:
        return None, unmeasured
    return float(np.mean(costs)) * sum(competitions.values()) / 3600, unmeasured


def halving_epochs(configurations: int, budgets: list[int], eta: int, replicates: int, brackets: int = 1,
                   leader: bool = False) -> int:
    """Epochs successive halving trains in one competition: in each bracket its share of the
    configurations at its first rung, the top 1/eta (one at least) of each rung continued to the
    next, and the finalists' further replicates from scratch (``leader``: the leader's alone, as
    when no other finalist overtakes it)."""
    total = finalists = 0
    for bracket in range(brackets):
        count = len(range(bracket, configurations, brackets))
        reached = 0
        for rung in range(bracket, len(budgets)):
            total += count * (budgets[rung] - reached)
            reached = budgets[rung]
            if rung < len(budgets) - 1:
                count = max(1, count // eta) if count else 0
        finalists += count
    return total + (1 if leader else finalists) * (replicates - 1) * budgets[-1]


def _per_configuration(spec: EnsembleSpec, table: dict, epochs_of) -> tuple[list[float], set[str]]:
    """Seconds of each configuration's training for ``epochs_of(configuration)`` epochs."""
    costs, unmeasured = [], set()
    for configuration in spec.space.configurations(spec.point_defaults):
        seconds = _training_seconds({**configuration, "epochs": epochs_of(configuration)}, spec, table)
        if seconds is None:
            unmeasured.add(f"{configuration['architecture']} on {configuration['dataset']}")
        else:
            costs.append(seconds)
    return costs, unmeasured


def _training_seconds(configuration: dict, spec: EnsembleSpec, table: dict) -> float | None:
    architecture, hidden = configuration["architecture"], configuration["hidden_dim"]
    per_sample = seconds_per_sample(architecture, hidden, table, configuration_rate_sets(spec, architecture, hidden))
    dataset = table["datasets"].get(configuration["dataset"])
    if per_sample is None or dataset is None:
        return None
    samples = spec.simulator.task_options(configuration["dataset"]).train_samples or dataset["train_samples"]
    steps = dataset["steps"] + configuration["pad"]
    return float(samples * configuration["epochs"] * steps / table["steps"] * per_sample)
