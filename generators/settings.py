"""What the generators read: ``gen_specs["user"]["settings"]``, validated once by the manager."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hypers.space import SearchSpace
from simulators.settings import HandedOver

# Which asha finalists get the space's further replicates: every one (alongside its promotion), or
# the leader of its group by mean full-budget score (after its chain), as the leader changes.
ReplicateFinalists = Literal["all", "leader"]


class AshaSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    budgets: tuple[int, ...] = Field(description="Epochs of each rung, the full budget last.")
    eta: int = Field(description="Promote the top 1/eta of a rung to eta times the epochs.")
    group_by: tuple[str, ...] = Field(description="Configurations compete within groups of equal values of these.")
    brackets: int = Field(1, description="Hyperband brackets: a configuration starts at its bracket's rung.")
    replicate_finalists: ReplicateFinalists = Field("all", description="Finalists given the further replicates: "
                                                    "all, or each group's leader by mean full-budget score.")


class GenSettings(HandedOver):
    space: SearchSpace = Field(description="The validated search space.")
    defaults: dict[str, Any] = Field(description="Point fields the simulator fixes where the space does not choose.")
    replicates: int = Field(description="Trainings per configuration (asha: per finalist).")
    seed: int = Field(description="Seeds identifiers, training seeds and sampling.")
    samples: int | None = Field(None, description="random: how many configurations to draw.")
    initial_batch: int = Field(1, description="Sims handed out first: one per worker.")
    skip_identifiers: frozenset[str] = Field(frozenset(), description="Trainings earlier runs finished (resume).")
    group_size: int = Field(1, description="Same-shape points per sim (vectorised groups).")
    asha: AshaSettings | None = Field(None, description="asha only: rungs and competition groups.")
