"""Which GPUs and how many CPU threads each training gets, from libEnsemble's resource sets.

libEnsemble divides the nodes of the allocation (PBS_NODEFILE, SLURM_NODELIST, ...) into one
resource set per worker. A worker's set is a slot on one node; slot ``s`` trains on GPUs
``(s // sims_per_gpu) * gpus_per_sim ...`` of that node, so ``sims_per_gpu`` small models share
one GPU and none shares beyond that. CPU threads are the node's cores split over its slots, so
packed trainings do not oversubscribe cores.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

# JAX's cap on what one process's allocator may take of a GPU, which engines/memory.py sizes
# groups by. Each training gets its share of TRAININGS_SHARE_OF_A_GPU (the rest: every process's
# CUDA context and libraries' workspaces). Without a cap each process may grow to 75% of the GPU,
# and its allocator grows in doubling regions: four trainings sharing an H200 ran out of memory.
JAX_MEMORY_CAP_VARIABLE = "XLA_PYTHON_CLIENT_MEM_FRACTION"
TRAININGS_SHARE_OF_A_GPU = 0.9


@dataclass(frozen=True)
class Allotment:
    node: str
    slot: int
    gpus: tuple[int, ...]
    threads: int
    gpu_share: float = 1.0  # of each of its GPUs' memory: 1 / sims_per_gpu

    def environment(self, gpu_env: str) -> dict[str, str]:
        environment = {"OMP_NUM_THREADS": str(self.threads)}
        if self.gpus:
            environment[gpu_env] = ",".join(map(str, self.gpus))
            cap = f"{TRAININGS_SHARE_OF_A_GPU * self.gpu_share:.4g}"
            environment[JAX_MEMORY_CAP_VARIABLE] = os.environ.get(JAX_MEMORY_CAP_VARIABLE, cap)  # a user's own wins
        return environment

    def as_record(self) -> dict:
        return asdict(self)


class PlacementError(ValueError):
    pass


def gpus_of_slot(slot: int, gpus_per_sim: int, sims_per_gpu: int, gpus_per_node: int) -> tuple[int, ...]:
    if gpus_per_sim == 0:
        return ()
    first = (slot // sims_per_gpu) * gpus_per_sim
    if first + gpus_per_sim > gpus_per_node:
        raise PlacementError(
            f"slot {slot} needs GPUs {first}..{first + gpus_per_sim - 1} but a node has {gpus_per_node}: "
            f"run at most gpus_per_node * sims_per_gpu / gpus_per_sim sim workers per node"
        )
    return tuple(range(first, first + gpus_per_sim))


def allot(worker_resources, gpus_per_node: int, gpus_per_sim: int, sims_per_gpu: int) -> Allotment:
    """The allotment of the worker holding ``worker_resources`` (libEnsemble's WorkerResources)."""
    slot = worker_resources.slots_on_node[0]
    return Allotment(
        node=worker_resources.local_nodelist[0],
        slot=slot,
        gpus=gpus_of_slot(slot, gpus_per_sim, sims_per_gpu, gpus_per_node),
        threads=max(1, worker_resources.cores_per_rset_per_node),
        gpu_share=1 / sims_per_gpu,
    )
