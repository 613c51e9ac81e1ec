"""From a validated spec to libEnsemble's own spec objects, the keyword arguments of ``libE()``.

The sim function and the generators get typed settings (``ensembles/settings.py``) under
``user["settings"]``; the allocation function gets libEnsemble's own options and the manager's
watchers (progress line, history keeper), made where the run starts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from libensemble.specs import AllocSpecs, ExitCriteria, GenSpecs, LibeSpecs, SimSpecs

from allocators.persistent import persistent_with_progress
from ensembles.resume import as_initial_history, history_dtype
from ensembles.schema import EnsembleSpec
from ensembles.settings import generator_settings, sim_settings, trainings_per_sim
from generators.asha import RESULT_INPUTS, persistent_asha
from generators.grid import persistent_grid
from generators.random_sampler import persistent_random
from hypers.fields import point_dtype, point_fields
from simulators.records import RESULT_DTYPE
from simulators.run_dir import RunDir
from simulators.sim_function import train_sim

GROUP_PRIORITY_DTYPE = [("priority", "f8")]  # the points of one group share it (generators.grouping)
GENERATORS = {"grid": persistent_grid, "random": persistent_random, "asha": persistent_asha}


def libe_inputs(spec: EnsembleSpec, run_dir: RunDir, sim_workers: int, H0: np.ndarray | None = None,
                watchers: tuple = ()) -> dict[str, Any]:
    """Keyword arguments for ``libE()``: the generator runs in a thread on the manager
    (``gen_on_manager``), so every worker trains. ``H0`` holds trainings finished by earlier
    runs of the same study (``--resume``): they are kept and not generated again. ``watchers``
    see the live history on every pass of the manager (``update(H)``)."""
    H0 = H0 if H0 is not None else as_initial_history(np.zeros(0, dtype=history_dtype()))
    group_size = trainings_per_sim(spec)
    sim_max = spec.trainings_to_run() - len(H0)  # libEnsemble counts on top of H0
    return {
        "sim_specs": SimSpecs(sim_f=train_sim, inputs=list(point_fields()), outputs=RESULT_DTYPE,
                              user={"settings": sim_settings(spec, run_dir, group_size)}),
        "gen_specs": _gen_specs(spec, sim_workers, H0, group_size),
        "alloc_specs": AllocSpecs(alloc_f=persistent_with_progress, user={
            "async_return": True,
            "give_all_with_same_priority": group_size > 1,  # a group is one sim
            "active_recv_gen": spec.adaptive,
            "watchers": watchers,
        }),
        "exit_criteria": ExitCriteria(sim_max=sim_max, wallclock_max=spec.exit_criteria.wallclock_max),
        "libE_specs": _libe_specs(spec, run_dir, sim_workers),
        "persis_info": {},
        "H0": H0,
    }


def _gen_specs(spec: EnsembleSpec, sim_workers: int, H0: np.ndarray, group_size: int) -> GenSpecs:
    """On resume libEnsemble starts the generator with H0's rows: asha rebuilds its rungs from them."""
    settings = generator_settings(spec, spec.generator.batch or sim_workers, H0["identifier"], group_size)
    if spec.adaptive:
        return GenSpecs(gen_f=persistent_asha, inputs=[*point_fields(), *RESULT_INPUTS[1:], "sim_ended_time"],
                        persis_in=["sim_id", *RESULT_INPUTS], outputs=point_dtype() + GROUP_PRIORITY_DTYPE,
                        user={"settings": settings})
    return GenSpecs(gen_f=GENERATORS[spec.generator.kind], inputs=["sim_id"], persis_in=["sim_id"],
                    outputs=point_dtype() + GROUP_PRIORITY_DTYPE, user={"settings": settings})


def _libe_specs(spec: EnsembleSpec, run_dir: RunDir, sim_workers: int) -> LibeSpecs:
    resource_info: dict[str, Any] = {}
    if spec.resources.gpus_per_node is not None:
        resource_info["gpus_on_node"] = spec.resources.gpus_per_node
    if spec.resources.cores_per_node is not None:
        resource_info["cores_on_node"] = (spec.resources.cores_per_node, spec.resources.cores_per_node)
    local = {"nworkers": sim_workers} if spec.comms == "local" else {}
    return LibeSpecs(comms=spec.comms, gen_on_manager=True, workflow_dir_path=str(run_dir.path),
                     reuse_output_dir=True, save_H_and_persis_on_abort=True, resource_info=resource_info, **local)
