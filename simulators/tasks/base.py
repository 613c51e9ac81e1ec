"""What every task hands the trainer: arrays plus how to score them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

Objective = Literal["classification", "binary", "regression"]


@dataclass(frozen=True)
class TaskData:
    """Train and validation sequences shaped (samples, steps, features), or (samples, steps) of
    token indices when ``vocabulary`` is set."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    objective: Objective
    n_classes: int = 1
    vocabulary: int | None = None
    target_steps: int = 1  # > 1: one label per output step (the copy task), read from the last state
    per_step: bool = False  # one label per input step, each read from that step's state (group)
    corruption: str = "none"  # the composition applied to the training images (corruptions.py)
    val_corruption: str = "none"  # the composition applied to the validation images

    @property
    def steps(self) -> int:
        return self.x_train.shape[1]

    @property
    def features(self) -> int:
        return 1 if self.vocabulary else self.x_train.shape[2]

    def with_inputs(self, x_train: np.ndarray, x_val: np.ndarray) -> TaskData:
        return replace(self, x_train=x_train, x_val=x_val)


def split(x: np.ndarray, y: np.ndarray, validation_fraction: float, seed: int):
    """A fixed shuffled split, the same on every run and worker."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * validation_fraction))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]
