"""From a validated spec to the typed settings the sim function and the generators read."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable

from ensembles.schema import EnsembleSpec
from generators.settings import AshaSettings, GenSettings
from simulators.options import AUTO_GROUP_LIMIT, TrainingOptions, WorkerOptions
from simulators.run_dir import RunDir
from simulators.settings import SimSettings


def trainings_per_sim(spec: EnsembleSpec) -> int:
    """Groups pay only on the jax engine, which ``auto`` picks in the trainer where Keras runs on
    JAX (KERAS_BACKEND=jax, inherited from here) with a GPU; elsewhere every point is its own sim,
    so every worker trains."""
    simulator = spec.simulator
    requested = AUTO_GROUP_LIMIT if simulator.group_size == "auto" else simulator.group_size
    if requested == 1 or simulator.engine == "jax":
        return requested
    if os.environ.get("KERAS_BACKEND") != "jax" or not importlib.util.find_spec("jax"):
        return 1
    gpus = spec.resources.gpus_per_node
    if gpus is None:
        from libensemble.resources.gpu_detect import get_num_gpus

        gpus = get_num_gpus()
    return requested if gpus else 1


def training_options(spec: EnsembleSpec) -> TrainingOptions:
    """The simulator fields the trainer reads."""
    return TrainingOptions.model_validate(spec.simulator.model_dump(include=set(TrainingOptions.model_fields)))


def sim_settings(spec: EnsembleSpec, run_dir: RunDir, group_size: int) -> SimSettings:
    worker = WorkerOptions.model_validate(spec.simulator.model_dump(include=set(WorkerOptions.model_fields)))
    return SimSettings(run_dir=run_dir, worker=worker.model_copy(update={"group_size": group_size}),
                       training=training_options(spec), gpu_env=spec.resources.gpu_env)


def generator_settings(spec: EnsembleSpec, initial_batch: int = 1, skip_identifiers: Iterable[str] = (),
                       group_size: int = 1) -> GenSettings:
    """Also how ``--resume`` asks an asha search whether it has anything left to hand out."""
    asha = None
    if spec.adaptive:
        asha = AshaSettings(budgets=tuple(spec.budgets), eta=spec.generator.eta,
                            group_by=tuple(spec.generator.group_by), brackets=spec.generator.brackets)
    return GenSettings(space=spec.space, defaults=spec.point_defaults, replicates=spec.replicates,
                       seed=spec.generator.seed, samples=spec.generator.samples, initial_batch=initial_batch,
                       skip_identifiers=frozenset(skip_identifiers), group_size=group_size, asha=asha)
