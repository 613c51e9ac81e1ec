"""From a validated spec to the dictionaries libEnsemble's ``libE()`` takes."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

from allocators.persistent import persistent_with_progress
from ensembles.resume import as_initial_history
from ensembles.schema import EnsembleSpec
from generators.asha import RESULT_INPUTS, persistent_asha
from generators.grid import persistent_grid
from generators.random_sampler import persistent_random
from hypers.fields import point_dtype, point_fields
from simulators.options import TrainingOptions
from simulators.records import RESULT_DTYPE
from simulators.run_dir import RunDir
from simulators.sim import train_sim

GROUP_PRIORITY_DTYPE = [("priority", "f8")]  # the points of one group share it (generators.grouping)
GENERATORS = {"grid": persistent_grid, "random": persistent_random, "asha": persistent_asha}


def training_options(spec: EnsembleSpec) -> dict[str, Any]:
    """The simulator fields the trainer reads (see ``TrainingOptions``)."""
    return spec.simulator.model_dump(mode="json", include=set(TrainingOptions.model_fields))


def group_size(spec: EnsembleSpec) -> int:
    """Trainings per sim. Groups pay only on the jax engine, which ``auto`` picks in the trainer
    where Keras runs on JAX (KERAS_BACKEND=jax, inherited from here) with a GPU; elsewhere every
    point is its own sim, so every worker trains."""
    simulator = spec.simulator
    if simulator.group_size == 1 or simulator.engine == "jax":
        return simulator.group_size
    if os.environ.get("KERAS_BACKEND") != "jax" or not importlib.util.find_spec("jax"):
        return 1
    gpus = spec.resources.gpus_per_node
    if gpus is None:
        from libensemble.resources.gpu_detect import get_num_gpus

        gpus = get_num_gpus()
    return simulator.group_size if gpus else 1


def generator_options(spec: EnsembleSpec, sim_workers: int, skip_identifiers, trainings_per_sim: int = 1) -> dict[str, Any]:
    """What the generators read (``gen_specs["user"]``); also how ``--resume`` asks an asha
    search whether it has anything left to hand out."""
    return {
        "space": spec.space.model_dump(mode="json"),
        "replicates": spec.replicates,
        "samples": spec.generator.samples,
        "seed": spec.generator.seed,
        "defaults": spec.point_defaults,
        "initial_batch": spec.generator.batch or sim_workers,
        "skip_identifiers": list(skip_identifiers),
        "eta": spec.generator.eta,
        "min_budget": spec.budgets[0],
        "max_budget": spec.budgets[-1],
        "group_by": spec.generator.group_by,
        "group_size": trainings_per_sim,
    }


def libe_inputs(
    spec: EnsembleSpec, run_dir: RunDir, comms: str, sim_workers: int, H0: np.ndarray | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``libE()``: the generator runs in a thread on the manager
    (``gen_on_manager``), so every worker trains. ``H0`` holds trainings finished by earlier
    runs of the same study (``--resume``): they are kept and not generated again."""
    H0 = H0 if H0 is not None else as_initial_history(np.zeros(0, dtype=point_dtype() + RESULT_DTYPE))
    total = spec.count_points()
    trainings_per_sim = group_size(spec)
    # libEnsemble counts sim_max on top of H0's finished rows
    sim_max = min(spec.exit_criteria.sim_max or total, total) - len(H0)
    exit_criteria: dict[str, Any] = {"sim_max": sim_max}
    if spec.exit_criteria.wallclock_max:
        exit_criteria["wallclock_max"] = spec.exit_criteria.wallclock_max
    libE_specs: dict[str, Any] = {
        "comms": comms,
        "gen_on_manager": True,
        "workflow_dir_path": str(run_dir.path),
        "reuse_output_dir": True,
        "save_H_and_persis_on_abort": True,
    }
    if comms == "local":
        libE_specs["nworkers"] = sim_workers
    resource_info = {}
    if spec.resources.gpus_per_node is not None:
        resource_info["gpus_on_node"] = spec.resources.gpus_per_node
    if spec.resources.cores_per_node is not None:
        resource_info["cores_on_node"] = (spec.resources.cores_per_node, spec.resources.cores_per_node)
    if resource_info:
        libE_specs["resource_info"] = resource_info
    return {
        "sim_specs": {
            "sim_f": train_sim,
            "in": list(point_fields()),
            "out": RESULT_DTYPE,
            "user": {
                "run_dir": str(run_dir.path),
                "isolation": spec.simulator.isolation,
                "trainings_per_process": spec.simulator.trainings_per_process,
                "timeout": spec.simulator.timeout,
                "retries": spec.simulator.retries,
                "gpus_per_sim": spec.simulator.gpus_per_sim,
                "sims_per_gpu": spec.simulator.sims_per_gpu,
                "group_size": trainings_per_sim,
                "gpu_env": spec.resources.gpu_env,
                "training": training_options(spec),
            },
        },
        "gen_specs": {
            "gen_f": GENERATORS[spec.generator.kind],
            # on resume libEnsemble starts the generator with H0's rows: asha rebuilds its rungs from them
            "in": [*point_fields(), *RESULT_INPUTS[1:], "sim_ended_time"] if spec.adaptive else ["sim_id"],
            "persis_in": ["sim_id", *RESULT_INPUTS] if spec.adaptive else ["sim_id"],
            "out": point_dtype() if spec.adaptive else point_dtype() + GROUP_PRIORITY_DTYPE,
            "user": generator_options(spec, sim_workers, H0["identifier"], trainings_per_sim),
        },
        "alloc_specs": {
            "alloc_f": persistent_with_progress,
            "user": {
                "async_return": True,
                "give_all_with_same_priority": trainings_per_sim > 1,  # a group is one sim
                "active_recv_gen": spec.adaptive,
                "total": None if spec.adaptive else sim_max + len(H0),
                "already_finished": len(H0),
                "progress_interval": spec.allocator.progress_interval,
                "run_dir": str(run_dir.path),
                "save_every": spec.allocator.save_every,
            },
        },
        "exit_criteria": exit_criteria,
        "libE_specs": libE_specs,
        "persis_info": {},
        "H0": H0,
    }
