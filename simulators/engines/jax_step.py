"""A jitted training step over the same Keras model, on the JAX backend.

Keras' ``fit`` dispatches every batch from Python, which leaves a GPU idle for these small
recurrent models. Here the model's stateless API (``stateless_call``, the optimizer's
``stateless_apply``) makes one pure step, and ``lax.scan`` runs a whole epoch's batches in one
compiled program: the data stays on the device and is shuffled there, and Python only runs
once per epoch, to copy the weights back into the model for the records and checkpoints.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from simulators.engines import EpochCallback, Plan
from simulators.models import loss_and_metrics
from simulators.tasks.base import TaskData


def _hits(objective: str, logits, y):
    """Correct predictions per sample (mean over output steps); None for regression."""
    import jax.numpy as jnp

    if objective == "classification":
        correct = jnp.argmax(logits, axis=-1) == y
    elif objective == "binary":
        correct = (logits[..., 0] > 0) == (y > 0)
    else:
        return jnp.zeros(y.shape[0])
    return correct.reshape(y.shape[0], -1).mean(axis=1)


class JaxEngine:
    def train(self, model: keras.Model, data: TaskData, plan: Plan, on_epoch: EpochCallback) -> None:
        if keras.backend.backend() != "jax":
            raise RuntimeError(
                f"engine 'jax' needs the JAX backend, this process runs '{keras.backend.backend()}': "
                "set KERAS_BACKEND=jax, or use isolation: process (it sets it for the trainer)"
            )
        import jax
        import jax.numpy as jnp

        loss, metrics = loss_and_metrics(data)
        optimizer = plan.optimizer(len(data.x_train))
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)  # checkpoints keep its state
        optimizer.build(model.trainable_variables)
        initial_epoch = plan.resume(model)
        if initial_epoch >= plan.epochs:
            return

        def sample_losses(trainable, non_trainable, x, y):
            logits, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
            return loss(y, logits), (logits, non_trainable)

        def step(state, batch):
            trainable, non_trainable, optimizer_state = state
            x, y = batch
            (value, (logits, non_trainable)), grads = jax.value_and_grad(sample_losses, has_aux=True)(
                trainable, non_trainable, x, y
            )
            trainable, optimizer_state = optimizer.stateless_apply(optimizer_state, grads, trainable)
            return (trainable, non_trainable, optimizer_state), (value * len(y), _hits(data.objective, logits, y).sum())

        def batches(x, y, order, size):
            full = len(order) // size * size
            shaped = lambda a, idx, n: a[idx].reshape(n, size, *a.shape[1:])  # noqa: E731
            return (shaped(x, order[:full], full // size), shaped(y, order[:full], full // size)), order[full:]

        @jax.jit
        def train_epoch(state, key, x, y):
            order = jax.random.permutation(key, len(x))
            (xs, ys), rest = batches(x, y, order, plan.batch_size)
            state, (losses, hits) = jax.lax.scan(step, state, (xs, ys))
            totals = jnp.stack([losses.sum(), hits.sum()])
            if len(rest):  # the last, smaller batch: a second shape, compiled once
                state, (last_loss, last_hits) = step(state, (x[rest], y[rest]))
                totals = totals + jnp.stack([last_loss, last_hits])
            return state, totals / len(x)

        @jax.jit
        def evaluate(state, x, y):
            trainable, non_trainable, _ = state
            logits, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            return jnp.stack([loss(y, logits), _hits(data.objective, logits, y).mean()])

        state = (
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in optimizer.variables],
        )
        x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
        x_val, y_val = jnp.asarray(data.x_val), jnp.asarray(data.y_val)
        key = jax.random.PRNGKey(plan.seed)
        for epoch in range(initial_epoch + 1, plan.epochs + 1):
            started = time.perf_counter()
            state, (train_loss, train_accuracy) = train_epoch(state, jax.random.fold_in(key, epoch), x_train, y_train)
            val_loss, val_accuracy = _evaluate_in_chunks(evaluate, state, x_val, y_val, plan.batch_size * 8)
            _copy_back(model, optimizer, state)
            record = {"loss": float(train_loss), "val_loss": val_loss}
            if data.objective != "regression":
                record |= {"accuracy": float(train_accuracy), "val_accuracy": val_accuracy}
            record["seconds"] = time.perf_counter() - started
            if not on_epoch(epoch, record):
                return


def _evaluate_in_chunks(evaluate, state, x, y, chunk: int) -> tuple[float, float]:
    """Validation in a few large chunks: bounded memory, few compilations (at most two shapes)."""
    totals = np.zeros(2)
    for start in range(0, len(x), chunk):
        size = min(chunk, len(x) - start)
        totals += np.asarray(evaluate(state, x[start : start + size], y[start : start + size])) * size
    loss, accuracy = totals / len(x)
    return float(loss), float(accuracy)


def _copy_back(model: keras.Model, optimizer: keras.optimizers.Optimizer, state) -> None:
    trainable, non_trainable, optimizer_state = state
    for variable, value in zip(model.trainable_variables, trainable):
        variable.assign(value)
    for variable, value in zip(model.non_trainable_variables, non_trainable):
        variable.assign(value)
    for variable, value in zip(optimizer.variables, optimizer_state):
        variable.assign(value)
