"""The resource plan ``--dry-run`` prints: how the ensemble will occupy the machine, and what it
will cost, before a single node-hour is spent."""

from __future__ import annotations

import math
import os

from ensembles.schema import EnsembleSpec


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
    points = spec.count_points()
    lines = [
        f"plan: {nodes} node(s), {workers} workers (MPI: {workers + 1} ranks), up to {per_node} trainings per node",
        f"plan: {concurrent} trainings at a time"
        + (f", {spec.simulator.sims_per_gpu} per GPU" if spec.simulator.gpus_per_sim else ", CPU only")
        + (f", {spec.simulator.threads} threads each" if spec.simulator.threads else ""),
    ]
    if concurrent < workers:
        lines.append(f"plan: warning: {workers - concurrent} workers will wait: the nodes hold {concurrent} trainings")
    if sim_seconds:
        waves = math.ceil(points / concurrent)
        hours = waves * sim_seconds / 3600
        lines.append(f"plan: {points} points x {sim_seconds:g} s = {waves} waves, about {hours:.1f} h wall time "
                     f"and {hours * nodes:.1f} node-hours")
    return "\n".join(lines)
