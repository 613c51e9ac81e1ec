"""Training engines: one interface, several ways to run the same Keras model.

An engine trains ``model`` on ``data`` following ``plan`` and calls ``on_epoch`` after every
epoch with that epoch's metrics; ``on_epoch`` returns False to stop (divergence). Engines own
how the step runs (Keras ``fit`` here; a jitted stateless step on JAX later), never what is
recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import keras

from simulators.tasks.base import TaskData


@dataclass(frozen=True)
class Plan:
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    clipnorm: float | None = None


EpochCallback = Callable[[int, dict[str, float]], bool]


class Engine(Protocol):
    def train(self, model: keras.Model, data: TaskData, plan: Plan, on_epoch: EpochCallback) -> None: ...


def engine(name: str) -> Engine:
    if name == "fit":
        from simulators.engines.fit import FitEngine

        return FitEngine()
    raise ValueError(f"unknown engine '{name}'; allowed: fit")
