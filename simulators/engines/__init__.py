"""Training engines: one interface, several ways to run the same Keras model.

An engine compiles ``model``, calls ``plan.resume(model)`` to restore a checkpoint (it returns
the epoch to continue after), trains, and calls ``on_epoch`` after every epoch with that
epoch's metrics, the model's variables holding the current state; ``on_epoch`` returns False
to stop (divergence). Engines own how the step runs (Keras ``fit``, or a jitted stateless step
on JAX), never what is recorded or saved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import keras

from simulators.architectures.update_rule import UpdateRule
from simulators.engines.update_rules import AdamWithRules
from simulators.tasks.base import TaskData


def _start_fresh(model: keras.Model) -> int:
    return 0


@dataclass(frozen=True)
class Plan:
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    clipnorm: float | None = None
    schedule: str = "constant"
    warmup_epochs: int = 0
    resume: Callable[[keras.Model], int] = _start_fresh

    def optimizer(self, samples: int, rules: dict[str, UpdateRule] | None = None) -> keras.optimizers.Optimizer:
        """Adam with the plan's learning rate, schedule (per step) and clipping, and ``rules`` for the
        variables an architecture trains otherwise (``models.update_rules``); one for every engine."""
        steps = -(-samples // self.batch_size) * self.epochs
        rate: float | keras.optimizers.schedules.LearningRateSchedule = self.learning_rate
        if self.schedule != "constant":
            warmup = -(-samples // self.batch_size) * self.warmup_epochs if self.schedule == "warmup_cosine" else 0
            rate = keras.optimizers.schedules.CosineDecay(
                0.0 if warmup else self.learning_rate, decay_steps=max(1, steps - warmup),
                warmup_target=self.learning_rate if warmup else None, warmup_steps=warmup,
            )
        return AdamWithRules(rate, clipnorm=self.clipnorm, rules=rules)


EpochCallback = Callable[[int, dict[str, float]], bool]


class Engine(Protocol):
    def train(self, model: keras.Model, data: TaskData, plan: Plan, on_epoch: EpochCallback) -> None: ...


def resolve(name: str) -> str:
    """``auto``: the jitted JAX step wherever Keras runs on JAX (on a GPU up to 1.3x fit's
    samples/s at batch 128, on a CPU 0.94-1.4x per CPU-second: docs/performance.md), else fit."""
    if name == "auto":
        return "jax" if keras.backend.backend() == "jax" else "fit"
    return name


def engine(name: str) -> Engine:
    name = resolve(name)
    if name == "fit":
        from simulators.engines.fit import FitEngine

        return FitEngine()
    if name == "jax":
        from simulators.engines.jax_step import JaxEngine

        return JaxEngine()
    raise ValueError(f"unknown engine '{name}'; allowed: fit, jax, auto")
