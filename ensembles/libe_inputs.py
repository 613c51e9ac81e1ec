"""From a validated spec to the dictionaries libEnsemble's ``libE()`` takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from allocators.persistent import persistent_with_progress
from ensembles.schema import EnsembleSpec
from generators.grid import persistent_grid
from generators.random_sampler import persistent_random
from hypers.fields import POINT_DTYPE, POINT_FIELDS
from simulators.options import TrainingOptions
from simulators.records import RESULT_DTYPE
from simulators.sim import train_sim

GENERATORS = {"grid": persistent_grid, "random": persistent_random}


def training_options(spec: EnsembleSpec) -> dict[str, Any]:
    """The simulator fields the trainer reads (see ``TrainingOptions``)."""
    return spec.simulator.model_dump(mode="json", include=set(TrainingOptions.model_fields))


def libe_inputs(spec: EnsembleSpec, run_dir: Path, comms: str, sim_workers: int) -> dict[str, Any]:
    """Keyword arguments for ``libE()``: the generator runs in a thread on the manager
    (``gen_on_manager``), so every worker trains."""
    total = spec.count_points()
    sim_max = min(spec.exit_criteria.sim_max or total, total)
    exit_criteria: dict[str, Any] = {"sim_max": sim_max}
    if spec.exit_criteria.wallclock_max:
        exit_criteria["wallclock_max"] = spec.exit_criteria.wallclock_max
    libE_specs: dict[str, Any] = {
        "comms": comms,
        "gen_on_manager": True,
        "workflow_dir_path": str(run_dir),
        "reuse_output_dir": True,
        "save_H_and_persis_on_abort": True,
    }
    if comms == "local":
        libE_specs["nworkers"] = sim_workers
    return {
        "sim_specs": {
            "sim_f": train_sim,
            "in": list(POINT_FIELDS),
            "out": RESULT_DTYPE,
            "user": {
                "sims_dir": str(run_dir / "sims"),
                "isolation": spec.simulator.isolation,
                "timeout": spec.simulator.timeout,
                "training": training_options(spec),
            },
        },
        "gen_specs": {
            "gen_f": GENERATORS[spec.generator.kind],
            "persis_in": ["sim_id"],
            "out": POINT_DTYPE,
            "user": {
                "space": spec.space.model_dump(mode="json"),
                "replicates": spec.replicates,
                "samples": spec.generator.samples,
                "seed": spec.generator.seed,
                "defaults": spec.point_defaults,
                "initial_batch": spec.generator.batch or sim_workers,
            },
        },
        "alloc_specs": {
            "alloc_f": persistent_with_progress,
            "user": {"async_return": True, "total": sim_max, "progress_interval": spec.allocator.progress_interval},
        },
        "exit_criteria": exit_criteria,
        "libE_specs": libE_specs,
        "persis_info": {},
    }
