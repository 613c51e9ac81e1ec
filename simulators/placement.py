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

# A GPU's memory among the trainings that share it (``sims_per_gpu``), read by engines/memory.py
# to size groups. JAX: each training takes its slice up front, TRAININGS_SHARE_OF_A_GPU / sims_per_gpu
# of the GPU (the rest: every process's CUDA context and libraries' workspaces), as one region it
# never grows out of. Measured on an H200 shared by four: without a cap, each process may grow to
# 75% of the GPU; with a cap but growing on demand, its allocator's regions (doubling in size, never
# given back) fragment the slice, and a group of 30 GRUs (18.7 GiB at once) ran out in a 31.6 GiB
# slice after an rnn group. Where no share is known, or for TensorFlow (no cap by environment),
# memory is taken on demand.
TRAININGS_SHARE_OF_A_GPU = 0.9
JAX_MEMORY = ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION")
TF_MEMORY = ("TF_FORCE_GPU_ALLOW_GROWTH",)
# The user's own, as this process started: the trainers' settings go into its environment later
USERS_OWN = {name: os.environ[name] for name in JAX_MEMORY + TF_MEMORY if name in os.environ}


def gpu_memory_environment(share: float | None, users_own: dict[str, str] | None = None) -> dict[str, str]:
    """The backends' GPU memory settings of a training with ``share`` of each of its GPUs (None:
    unknown). A user's own (``USERS_OWN`` unless given) win, JAX's two as one setting (theirs and
    ours mixed could grow on demand in a slice, or preallocate more than the GPU has)."""
    users_own = USERS_OWN if users_own is None else users_own
    jax = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"} if share is None else {
        "XLA_PYTHON_CLIENT_PREALLOCATE": "true",
        "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{TRAININGS_SHARE_OF_A_GPU * share:.4g}"}
    if any(name in users_own for name in JAX_MEMORY):
        jax = {name: users_own[name] for name in JAX_MEMORY if name in users_own}
    return jax | {"TF_FORCE_GPU_ALLOW_GROWTH": users_own.get("TF_FORCE_GPU_ALLOW_GROWTH", "true")}


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
        return environment | gpu_memory_environment(self.gpu_share if self.gpus else None)

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
