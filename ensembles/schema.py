"""The ensemble spec: one strict pydantic model, so every mistake is caught, with the field's
name, before any worker starts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from generators.asha import DEFAULT_GROUP_BY, rung_budgets
from generators.settings import ReplicateFinalists
from hypers.fields import choice_fields
from hypers.space import SearchSpace
from simulators.architectures.compute import FUSED_ARCHITECTURES, fused_kernel_fits, fused_limits
from simulators.options import TrainingOptions, WorkerOptions
from simulators.tasks.corruptions import NONE, check_image_datasets

SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GeneratorSpec(_Strict):
    kind: Literal["grid", "random", "asha"] = Field(
        "grid", description="grid: every configuration; random: `samples` of them; asha: successive halving.")
    samples: int | None = Field(None, ge=1, description="random only: how many distinct configurations to draw.")
    eta: int = Field(3, ge=2, description="asha: promote the top 1/eta of a rung to eta times the epochs.")
    min_budget: int = Field(1, ge=1, description="asha: epochs of the first rung.")
    max_budget: int | None = Field(None, ge=1, description="asha: epochs of the last rung; default simulator.epochs.")
    group_by: list[str] = Field(
        list(DEFAULT_GROUP_BY),
        description="asha: configurations compete within groups of equal values of these fields.")
    brackets: int = Field(
        1, ge=1, description="asha: Hyperband's brackets. A configuration starts at its bracket b's first rung "
        "(min_budget * eta^b; b = a hash of the configuration mod brackets), so some late learners reach a later "
        "first rung before any pruning; 1 = plain ASHA.")
    replicate_finalists: ReplicateFinalists = Field(
        "all", description="asha: which configurations that reach the full budget are trained again with the "
        "further replicates (their own chain is replicate 0). all: every one, started alongside its promotion (the "
        "shortest search); leader: only the one leading its group by mean full-budget score, once its chain has "
        "ended, and in turn any that overtakes it (racing): fewer epochs, the winner still with every replicate.")
    replicates: int | None = Field(None, ge=1, description="Overrides the space's replicates.")
    seed: int = Field(0, ge=0, description="Seeds identifiers, training seeds and random sampling.")
    batch: int | None = Field(None, ge=1, description="Points in the first batch; default: one per sim worker.")

    @model_validator(mode="after")
    def _samples_for_random(self) -> GeneratorSpec:
        if self.kind == "random" and self.samples is None:
            raise ValueError("kind 'random' needs 'samples' (how many configurations to draw)")
        if self.kind != "random" and self.samples is not None:
            raise ValueError(f"'samples' is for kind 'random'; {self.kind} does not draw samples")
        unknown = set(self.group_by) - set(choice_fields())
        if unknown:
            raise ValueError(f"group_by: {sorted(unknown)} are not point fields; allowed: {', '.join(choice_fields())}")
        return self


class SimulatorSpec(TrainingOptions, WorkerOptions):
    """How the trainings run: what the trainer reads, what the worker reads, and the point fields
    the simulator fixes for spaces that do not choose them."""

    epochs: int = Field(10, ge=1, description="Epochs of points whose space does not choose them.")
    batch_size: int = Field(32, ge=1, description="Batch size of points whose space does not choose it.")

    @model_validator(mode="after")
    def _groups_need_the_jax_engine(self) -> SimulatorSpec:
        if self.grouped and self.engine == "fit":
            raise ValueError("group_size > 1 needs engine 'jax' or 'auto' (fit trains one model at a time)")
        if self.grouped and self.schedule != "constant":
            raise ValueError("group_size > 1 takes schedule: constant (a schedule would give every member "
                             "the first member's learning rate)")
        return self


class ResourcesSpec(_Strict):
    """What a node has; null = let libEnsemble detect it. Job scripts fill these from platform facts."""

    gpus_per_node: int | None = Field(None, ge=0, description="GPUs on each node.")
    cores_per_node: int | None = Field(None, ge=1, description="Physical cores on each node.")
    launch: Literal["auto", "local", "mpi"] = Field(
        "auto", description="How process-isolated trainings start: local subprocess, or mpiexec onto the node "
        "of the worker's resource set; auto = mpi when the allocation has more than one node.")
    gpu_env: str = Field("CUDA_VISIBLE_DEVICES", pattern=r"^[A-Z_][A-Z0-9_]*$",
                         description="Variable that selects GPUs: ROCR_VISIBLE_DEVICES on AMD, ZE_AFFINITY_MASK on "
                         "Intel.")


class AllocatorSpec(_Strict):
    kind: Literal["persistent"] = Field("persistent", description="Persistent generator, every free worker kept busy.")
    progress_interval: float = Field(10.0, gt=0, description="Seconds between progress lines.")
    save_every: int = Field(10, ge=1, description="Save history.npy after every k finished trainings.")


class ExitCriteria(_Strict):
    sim_max: int | None = Field(None, ge=1, description="Stop after this many trainings; default: all points.")
    wallclock_max: float | None = Field(None, gt=0, description="Stop (and save) after this many seconds.")


class EnsembleSpec(_Strict):
    name: str = Field(pattern=SAFE_NAME, description="Names the run; letters, digits, '_', '.', '-'.")
    space: SearchSpace
    generator: GeneratorSpec = Field(default_factory=GeneratorSpec)
    simulator: SimulatorSpec = Field(default_factory=SimulatorSpec)
    allocator: AllocatorSpec = Field(default_factory=AllocatorSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    exit_criteria: ExitCriteria = Field(default_factory=ExitCriteria)
    comms: Literal["local", "mpi"] = "local"
    nworkers: int | None = Field(None, ge=1, description="Sim workers with local comms; default: the machine's cores.")
    out: str | None = Field(None, description="Output directory; default runs/<name>.")

    @property
    def replicates(self) -> int:
        return self.generator.replicates or self.space.replicates

    @property
    def point_defaults(self) -> dict:
        """Point fields the simulator fixes for spaces that do not choose them."""
        return {"epochs": self.simulator.epochs, "batch_size": self.simulator.batch_size}

    @property
    def adaptive(self) -> bool:
        """Whether the number of trainings depends on their results (asha)."""
        return self.generator.kind == "asha"

    @property
    def budgets(self) -> list[int]:
        """asha's epochs per rung."""
        generator = self.generator
        return rung_budgets(generator.min_budget, generator.max_budget or self.simulator.epochs, generator.eta)

    def count_points(self) -> int:
        """Trainings of the study; for asha the most it can run (every configuration through every
        rung, every one a finalist)."""
        if self.generator.kind == "random":
            return self.generator.samples * self.replicates
        if self.adaptive:
            return self.count_configurations() * (len(self.budgets) + self.replicates - 1)
        return self.count_configurations() * self.replicates

    def trainings_to_run(self) -> int:
        """``exit_criteria.sim_max`` or every point, whichever is fewer."""
        return min(self.exit_criteria.sim_max or self.count_points(), self.count_points())

    def count_configurations(self) -> int:
        """Configurations of the space that are trained (exclusions and impossible ones dropped)."""
        return self.space.count_configurations(self.point_defaults)

    @model_validator(mode="after")
    def _asha_owns_the_epochs(self) -> EnsembleSpec:
        if self.adaptive and "epochs" in self.space.choices:
            raise ValueError("space.choices.epochs: asha sets epochs by rung (generator.min_budget..max_budget); "
                             "remove it")
        if self.adaptive and self.generator.min_budget > (self.generator.max_budget or self.simulator.epochs):
            raise ValueError("generator.min_budget exceeds the full budget (generator.max_budget or simulator.epochs)")
        if self.adaptive and self.simulator.schedule != "constant":
            raise ValueError(f"simulator.schedule: asha takes schedule: constant ({self.simulator.schedule} spans a "
                             "training's own epochs, so a chain continued rung by rung would restart its schedule at "
                             "every rung, and a finalist's chain, its replicate 0, would not be one full-budget "
                             "training)")
        if self.adaptive and self.generator.brackets > len(self.budgets):
            raise ValueError(f"generator.brackets: {self.generator.brackets} brackets need as many rungs; the rungs "
                             f"are {self.budgets}: use at most {len(self.budgets)}")
        return self

    @model_validator(mode="after")
    def _fused_kernel_serves_an_architecture(self) -> EnsembleSpec:
        """kernel: fused falls back to the scan where it cannot run (as remat is ignored off JAX):
        architectures it lacks, recurrent blocks a GPU program cannot hold. Where that is every
        configuration, it would change nothing."""
        if self.simulator.kernel != "fused":
            return self
        sizes = {(c["architecture"], c["hidden_dim"]) for c in self.space.configurations(self.point_defaults)}
        if not any(fused_kernel_fits(a, h, self.simulator.precision) for a, h in sizes):
            named = ", ".join(sorted(f"{a}/{h}" for a, h in sizes))
            raise ValueError(f"simulator.kernel: fused runs {', '.join(FUSED_ARCHITECTURES)} where a GPU program "
                             f"holds their recurrent weights ({fused_limits()}), and no configuration of the space "
                             f"is one ({named}): set simulator.kernel: scan, or choose such an architecture and size")
        return self

    @model_validator(mode="after")
    def _per_step_tasks_keep_their_order(self) -> EnsembleSpec:
        """A task labelled at every step (group, running products) has no meaning permuted or padded."""
        if "group" not in self.space.choices.get("dataset", []):
            return self
        if self.simulator.task_options("group").labels != "running":
            return self
        for configuration in self.space.configurations(self.point_defaults):
            if configuration["dataset"] == "group" and (configuration["permute"] or configuration["pad"]):
                raise ValueError("space: dataset group (labels: running, one label per step) takes no permute or pad; "
                                 "exclude them, e.g. exclude: [{dataset: group, permute: true}, "
                                 "{dataset: group, pad: 1000}], "
                                 "or set simulator.tasks.group.labels: final")
        return self

    @model_validator(mode="after")
    def _corruptions_need_images(self) -> EnsembleSpec:
        chosen = [*self.space.choices.get("corruption", []), *self.space.choices.get("val_corruption", [])]
        if any(value != NONE for value in chosen):
            check_image_datasets(self.space.configurations(self.point_defaults))
        return self

    @model_validator(mode="after")
    def _enough_configurations(self) -> EnsembleSpec:
        if self.generator.kind == "random" and self.generator.samples > self.count_configurations():
            raise ValueError(
                f"generator.samples={self.generator.samples} exceeds the space's "
                f"{self.count_configurations()} configurations"
            )
        return self
