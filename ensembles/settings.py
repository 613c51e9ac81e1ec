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
    """Points per sim. Groups pay only on the jax engine with a GPU: ``engine: auto`` picks it in
    the trainer where Keras runs on JAX (KERAS_BACKEND=jax, inherited from here), and
    ``group_size: auto`` sizes groups by a GPU's memory. Elsewhere every point is its own sim, so
    every worker trains; a fixed K with ``engine: jax`` is taken as asked."""
    simulator = spec.simulator
    if simulator.group_size == 1:
        return 1
    if simulator.engine == "jax" and simulator.group_size != "auto":
        return simulator.group_size
    on_jax = simulator.engine == "jax" or (os.environ.get("KERAS_BACKEND") == "jax"
                                            and importlib.util.find_spec("jax") is not None)
    if not on_jax or not _gpus_per_node(spec):
        return 1
    return AUTO_GROUP_LIMIT if simulator.group_size == "auto" else simulator.group_size


def _gpus_per_node(spec: EnsembleSpec) -> int:
    if spec.resources.gpus_per_node is not None:
        return spec.resources.gpus_per_node
    from libensemble.resources.gpu_detect import get_num_gpus

    return get_num_gpus()


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
                            group_by=tuple(spec.generator.group_by), brackets=spec.generator.brackets,
                            replicate_finalists=spec.generator.replicate_finalists)
    return GenSettings(space=spec.space, defaults=spec.point_defaults, replicates=spec.replicates,
                       seed=spec.generator.seed, samples=spec.generator.samples, initial_batch=initial_batch,
                       skip_identifiers=frozenset(skip_identifiers), group_size=group_size, asha=asha)
