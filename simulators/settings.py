"""Settings handed across libEnsemble's boundary as typed, frozen objects.

``libE()`` validates its specs with pydantic and dumps them back to dicts before the run, which
would turn a pydantic model in ``sim_specs["user"]`` into a plain dict. A ``HandedOver`` model
serialises to itself, so the sim function and the generators receive the object the manager
validated (once), and read attributes. Every one of them pickles, for workers that need it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from simulators.options import TrainingOptions, WorkerOptions
from simulators.run_dir import RunDir


class HandedOver(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_serializer(mode="plain")
    def _as_itself(self) -> Any:  # Any: pydantic passes the object on as it is
        return self


class SimSettings(HandedOver):
    """What the sim function reads: ``sim_specs["user"]["settings"]``."""

    run_dir: RunDir = Field(description="Where the sim dirs and the trainers' inboxes go.")
    worker: WorkerOptions = Field(description="Isolation, timeout, retries, GPU packing; group_size as resolved "
                                  "for this run (trainings per sim).")
    training: TrainingOptions = Field(description="What the trainer reads.")
    gpu_env: str = Field("CUDA_VISIBLE_DEVICES", description="The variable that selects a training's GPUs.")
