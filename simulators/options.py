"""How trainings run: the parts of the ensemble spec the trainer (``TrainingOptions``) and the
worker's sim function (``WorkerOptions``) read."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from simulators.architectures.compute import Compute, Kernel, Precision, fused_limits
from simulators.architectures.options import OPTIONS
from simulators.placement import TRAININGS_SHARE_OF_A_GPU
from simulators.tasks import TASK_NAMES, task_module

MAX_GROUP_SIZE = 1024
AUTO_GROUP_LIMIT = 256  # group_size auto: points per sim, of which the trainer runs as many at once as fit


class WorkerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    isolation: Literal["process", "inline"] = Field(
        "process", description="process: trainings run in a trainer process of the worker's (crash-safe, killable); "
        "inline: in the worker.")
    trainings_per_process: int = Field(
        50, ge=1, description="isolation: process: a worker's trainer stays up for this many trainings, so Keras "
        "is imported once, not per training; 1 = a fresh process for each. A failed training's trainer is replaced.")
    timeout: float = Field(3600.0, gt=0, description="Seconds before a training is killed (isolation: process).")
    gpus_per_sim: int = Field(0, ge=0, description="GPUs given to each training; 0 = CPU.")
    sims_per_gpu: int = Field(1, ge=1, description="Trainings packed onto one GPU.")
    retries: int = Field(0, ge=0, description="Run a failed (not diverged) training again up to this many times.")
    group_size: int | Literal["auto"] = Field(
        1, description="Trainings of one shape (differing in learning rate, seed or replicate) vectorised in one "
        f"sim by the JAX engine, 1 to {MAX_GROUP_SIZE}; 1 = one training per sim; auto = up to {AUTO_GROUP_LIMIT} "
        "per sim, of which the trainer runs at once as many as the GPU's memory holds (one member's need read off "
        "its compiled program), the rest after them.")

    @field_validator("group_size")
    @classmethod
    def _group_size_in_range(cls, value: int | str) -> int | str:
        if value != "auto" and not 1 <= value <= MAX_GROUP_SIZE:
            raise ValueError(f"group_size takes 1 to {MAX_GROUP_SIZE} or auto, got {value}")
        return value

    @property
    def grouped(self) -> bool:
        """Several trainings per sim (or as many as fit)."""
        return self.group_size == "auto" or self.group_size > 1


class TrainingOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: Literal["fit", "jax", "auto"] = Field(
        "fit",
        description="fit = Keras' model.fit (every backend); jax = a jitted step over the same model (JAX "
        "backend, set for process-isolated trainers); auto = jax where Keras runs on JAX, else fit.",
    )
    data_dir: Path | None = Field(
        None, description="Where downloaded datasets are cached; default ~/.keras/datasets."
    )
    task_cache: Path | None = Field(
        None, description="Prepared task variants (.npy, memory-mapped) that the trainings on a node share; "
        "default $XDG_CACHE_HOME/taskgen (~/.cache/taskgen).",
    )
    tasks: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-dataset options, e.g. adding: {length: 100}."
    )
    architectures: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-architecture options, e.g. antisymmetric: {eps: 0.02}."
    )
    clipnorm: float | None = Field(None, gt=0, description="Clip each gradient to this norm.")
    schedule: Literal["constant", "cosine", "warmup_cosine"] = Field(
        "constant",
        description="Learning rate over training: constant, cosine decay to 0, or linear warm-up then cosine."
    )
    warmup_epochs: int = Field(1, ge=0, description="Warm-up length for schedule warmup_cosine.")
    tensorboard: bool = Field(
        False, description="Write TensorBoard scalars per epoch to sims/<id>/tensorboard (needs TensorFlow).")
    threads: int | None = Field(None, ge=1, description="CPU threads per training; default: the backend's.")
    adjoints: bool = Field(True, description="Measure the adjoint norms on a probe batch after every epoch.")
    checkpoint_every: int = Field(1, ge=0, description="Save a resumable checkpoint every k epochs; 0 = never.")
    precision: Precision = Field(
        "float32", description="Matrix products of the recurrence: float32, or bfloat16 operands with float32 "
        "products and sums (weights, states, optimizer and loss stay float32; docs/performance.md).")
    scan_unroll: int = Field(1, ge=1, le=64, description="Time steps per iteration of the compiled time loop.")
    remat: bool = Field(
        False, description="Recompute each time step in the backward pass instead of storing its intermediates: "
        "less memory per training (more of a group fits), more arithmetic (JAX).")
    kernel: Kernel = Field(
        "scan", description="What runs the recurrence's time loop: scan (keras.ops.scan, every backend and "
        f"architecture) or fused (one Pallas kernel for all steps, with its own backward pass, on the JAX backend "
        f"where a GPU program holds the recurrent weights: {fused_limits()}; the scan elsewhere. On an H200 the "
        "rnn trains 3.3x faster: docs/performance.md).")
    memory_margin: float = Field(
        0.2, ge=0, lt=1, description=f"Share of its slice of a GPU's memory ({TRAININGS_SHARE_OF_A_GPU:g} / "
        "sims_per_gpu, taken up front) a vectorised group leaves free: the members that fit in the rest train at "
        "once, the others after them (engine jax).")
    corruption_seed: int = Field(
        0, ge=0, description="Seeds the per-image magnitudes of the points' corruptions: every training of a study "
        "sees the same corrupted images, and the node's trainings share one prepared copy of each.")
    tracking: Literal["none", "wandb"] = Field(
        "none", description="wandb: log each training to Weights & Biases (pip install taskgen[wandb]): its point as "
        "the config, its epochs as metrics, grouped by the run's name; offline unless WANDB_MODE says otherwise.")

    @field_validator("tasks")
    @classmethod
    def _check_task_options(cls, tasks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, options in tasks.items():
            if name not in TASK_NAMES:
                raise ValueError(f"tasks.{name}: unknown dataset; allowed: {', '.join(TASK_NAMES)}")
            task_module(name).Options.model_validate(options)
        return tasks

    @field_validator("tracking")
    @classmethod
    def _tracking_is_installed(cls, kind: str) -> str:
        from simulators.tracking import check_available

        return check_available(kind)

    @field_validator("architectures")
    @classmethod
    def _check_architecture_options(cls, architectures: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, options in architectures.items():
            if name not in OPTIONS:
                raise ValueError(f"architectures.{name}: unknown architecture; allowed: {', '.join(OPTIONS)}")
            OPTIONS[name].model_validate(options)
        return architectures

    @property
    def compute(self) -> Compute:
        return Compute(self.precision, self.scan_unroll, self.remat, self.kernel)

    def architecture_options(self, architecture: str):
        """The validated options of ``architecture``, the study's setup filled in."""
        return OPTIONS[architecture].model_validate(self.architectures.get(architecture, {}))

    def task_options(self, dataset: str):
        """The validated options of ``dataset``, defaults filled in."""
        return task_module(dataset).Options.model_validate(self.tasks.get(dataset, {}))
