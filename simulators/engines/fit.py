"""Keras' own ``model.fit``: the portable engine, on every backend."""

from __future__ import annotations

import time

import keras

from simulators.engines import EpochCallback, Plan
from simulators.models import loss_and_metrics, update_rules
from simulators.tasks.base import TaskData


class _EpochReporter(keras.callbacks.Callback):
    """Hands each epoch's logs (with its wall time) to the engine's caller; stops when told."""

    def __init__(self, on_epoch: EpochCallback):
        super().__init__()
        self._on_epoch = on_epoch
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        metrics = {name: float(value) for name, value in (logs or {}).items()}
        metrics["seconds"] = time.perf_counter() - self._started
        if not self._on_epoch(epoch + 1, metrics):
            self.model.stop_training = True


class FitEngine:
    def train(self, model: keras.Model, data: TaskData, plan: Plan, on_epoch: EpochCallback) -> None:
        loss, metrics = loss_and_metrics(data)
        model.compile(
            optimizer=plan.optimizer(len(data.x_train), update_rules(model)),
            loss=loss,
            metrics=metrics,
        )
        initial_epoch = plan.resume(model)
        if initial_epoch >= plan.epochs:
            return
        model.fit(
            data.x_train,
            data.y_train,
            batch_size=plan.batch_size,
            epochs=plan.epochs,
            initial_epoch=initial_epoch,
            validation_data=(data.x_val, data.y_val),
            callbacks=[_EpochReporter(on_epoch)],
            shuffle=True,
            verbose=0,
        )
