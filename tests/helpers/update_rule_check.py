"""Engine-independent check that expRNN's skew parameter A takes the study's plain gradient step
(at 0.1 x the learning rate) while Adam trains every other weight. Used in process (TensorFlow,
``fit``) and in JAX subprocesses (the jax engine, a vectorised group): the gradient comes from one
SGD step of rate 1 on the same model, so no backend's autodiff is spelled out here."""

from __future__ import annotations

import keras
import numpy as np

from simulators.models import loss_and_metrics
from simulators.tasks.base import TaskData

LEARNING_RATE = 0.05
SKEW_SCALE = 0.1  # ExponentialOptions().skew_learning_rate_scale


def tiny_classification(samples=16, steps=12, features=3, classes=4, seed=0) -> TaskData:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, steps, features)).astype("float32")
    y = rng.integers(0, classes, size=samples).astype("int32")
    return TaskData(x, y, x, y, objective="classification", n_classes=classes)


def _values(model: keras.Model) -> dict[str, np.ndarray]:
    return {v.path: keras.ops.convert_to_numpy(v).astype("float64") for v in model.trainable_variables}


def gradients(model: keras.Model, data: TaskData) -> dict[str, np.ndarray]:
    """dL/dw on the whole training set, read off one SGD step of rate 1; the weights restored."""
    weights = model.get_weights()
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss=loss_and_metrics(data)[0])
    before = _values(model)
    model.train_on_batch(data.x_train, data.y_train)
    grads = {path: before[path] - value for path, value in _values(model).items()}
    model.set_weights(weights)
    return grads


def loss_and_gradient_gaps(first: keras.Model, second: keras.Model, data: TaskData) -> tuple[float, float]:
    """The largest differences between two models' training loss and gradients on ``data``: two
    ways of computing one function (same weights) should differ by rounding only."""
    loss = loss_and_metrics(data)[0]
    losses = [float(keras.ops.convert_to_numpy(loss(data.y_train, model(data.x_train, training=True))))
              for model in (first, second)]
    pairs = zip(gradients(first, data).values(), gradients(second, data).values(), strict=True)
    return abs(losses[0] - losses[1]), max(float(np.abs(a - b).max()) for a, b in pairs)


def steps(models: list[keras.Model], train) -> list[dict[str, np.ndarray]]:
    """What ``train()`` (one optimizer step of each model) changed, per model and variable path."""
    before = [_values(model) for model in models]
    train()
    return [{path: value - old[path] for path, value in _values(model).items()} for model, old in zip(models, before)]


def rule_errors(moved: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> dict[str, float]:
    """How far A's step is from -0.1 lr dL/dA, and the others' from Adam's first step (lr against
    the gradient's sign where the gradient outweighs Adam's epsilon, 1e-7 / sqrt(1 - beta_2) at
    step 1), relative to their sizes."""
    skew = next(path for path in moved if path.endswith("log_recurrent"))
    expected = -SKEW_SCALE * LEARNING_RATE * grads[skew]
    adam = [np.abs(np.abs(moved[p][np.abs(grads[p]) > 1e-2]) / LEARNING_RATE - 1).max(initial=0.0)
            for p in moved if p != skew]
    return {"skew": float(np.abs(moved[skew] - expected).max() / np.abs(expected).max()),
            "skew_moved": float(np.abs(moved[skew]).max()), "adam": float(max(adam))}
