"""Adjoint norms: how strongly the loss depends on the first and on the last hidden state.

||dL/dh_1|| small next to ||dL/dh_T|| means the gradient vanishes over the sequence; the study
relates this ratio to which architectures learn long tasks. A zero perturbation p_t is added
to every hidden state h_t of the recurrent block (for UnICORNN, every layer's y_t and z_t, as the
study's code concatenated them); dL/dp_t is then dL/dh_t, so one backward pass through the same
scan gives every adjoint, with no time loop in Python. Each sample's own loss is differentiated,
and the norms are averaged over the batch.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from simulators.models import program_shape
from simulators.records import ADJOINT_FIELDS
from simulators.tasks.base import TaskData

PROBE_SAMPLES = 32


def _perturbed_output(model: keras.Model, inputs, perturbation):
    """The model's output with ``perturbation`` added to the recurrent states."""
    value = inputs
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        value = layer(value, perturbation=perturbation) if layer.name == "recurrent" else layer(value)
    return value


def _state_width(model: keras.Model) -> int:
    return model.get_layer("recurrent").state_width


_compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its gradient function
_compiled_stateless: dict[tuple, Callable] = {}  # JAX: one program per model shape, weights as inputs


def _summed_loss(model: keras.Model, loss: keras.losses.Loss) -> Callable:
    def summed_loss(x, y, perturbation):  # the mean loss times n: each sample's own gradient
        return loss(y, _perturbed_output(model, x, perturbation)) * ops.cast(ops.shape(x)[0], "float32")

    return summed_loss


def _compile_adjoints(model: keras.Model, loss: keras.losses.Loss) -> Callable:
    """(model, x, y, zero perturbation) -> d(summed loss)/d perturbation, compiled once on
    whichever backend Keras runs: the one backend-specific piece. On JAX, ``model``'s weights
    are arguments, so the members of a vectorised group share one compiled program."""
    backend = keras.backend.backend()
    # TensorFlow and torch keep this function in a cache keyed weakly by the model: through a
    # proxy it does not keep its own key alive (a warm trainer's models would pile up)
    summed_loss = _summed_loss(model if backend == "jax" else weakref.proxy(model), loss)

    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def gradient(x, y, perturbation):
            with tf.GradientTape() as tape:
                tape.watch(perturbation)
                value = summed_loss(x, y, perturbation)
            return tape.gradient(value, perturbation)

        return lambda member, x, y, perturbation: gradient(x, y, perturbation)
    if backend == "jax":
        import jax

        def stateless_loss(values, x, y, perturbation):  # weights as arguments, never baked in
            with keras.StatelessScope(state_mapping=list(zip(model.variables, values))):
                return summed_loss(x, y, perturbation)

        jitted = jax.jit(jax.grad(stateless_loss, argnums=3))
        return lambda member, x, y, perturbation: jitted([v.value for v in member.variables], x, y, perturbation)
    if backend == "torch":
        import torch

        def gradient(member, x, y, perturbation):
            perturbation = perturbation.detach().requires_grad_(True)
            (result,) = torch.autograd.grad(summed_loss(x, y, perturbation), perturbation)
            return result

        return gradient
    raise NotImplementedError(f"adjoint norms on the {backend} backend")


def adjoint_norms(model: keras.Model, loss: keras.losses.Loss, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean ||dL_i/dh_1|| and ||dL_i/dh_T|| over the samples of (x, y)."""
    zeros = np.zeros((len(x), x.shape[1], _state_width(model)), dtype="float32")
    adjoints = _gradient_function(model, loss)(model, *(ops.convert_to_tensor(a) for a in (x, y, zeros)))
    norms = np.linalg.norm(ops.convert_to_numpy(adjoints), axis=-1)
    return float(norms[:, 0].mean()), float(norms[:, -1].mean())


def _gradient_function(model: keras.Model, loss: keras.losses.Loss) -> Callable:
    if keras.backend.backend() == "jax":
        shape = program_shape(model, loss)
        if shape not in _compiled_stateless:
            _compiled_stateless[shape] = _compile_adjoints(model, loss)
        return _compiled_stateless[shape]
    if model not in _compiled:
        _compiled[model] = _compile_adjoints(model, loss)
    return _compiled[model]


def epoch_adjoints(model: keras.Model, loss: Any, data: TaskData) -> dict[str, float]:
    """The four adjoint fields of an epoch's record, on a fixed probe batch of each split."""
    n = PROBE_SAMPLES
    initial, terminal = adjoint_norms(model, loss, data.x_train[:n], data.y_train[:n])
    val_initial, val_terminal = adjoint_norms(model, loss, data.x_val[:n], data.y_val[:n])
    return dict(zip(ADJOINT_FIELDS, (initial, terminal, val_initial, val_terminal)))


def group_adjoints(template: keras.Model, loss: Any, data: TaskData) -> GroupProbe:
    """For the JAX engine's groups: (the K members' stacked trainable and non-trainable weights,
    on the device) -> their adjoint fields, (K, 4) in ``ADJOINT_FIELDS`` order, from one vmapped
    program over both probe batches at once (on a GPU each call costs a whole time loop's latency,
    whatever its batch), so no member's weights leave the device for it."""
    import jax.numpy as jnp

    n = PROBE_SAMPLES
    split = len(data.x_train[:n])  # each sample's own gradient: the two batches side by side change none
    key = (program_shape(template, loss), split)
    if key not in _group_probes:  # once per shape in a process: later groups neither trace nor compile it
        _group_probes[key] = _group_probe(template, loss, split)
    x = jnp.asarray(np.concatenate([data.x_train[:n], data.x_val[:n]]))
    y = jnp.asarray(np.concatenate([data.y_train[:n], data.y_val[:n]]))
    return GroupProbe(_group_probes[key], x, y)


@dataclass(frozen=True, eq=False)  # its arrays are no key
class GroupProbe:
    """``group_adjoints``' program with its probe batch; ``compile`` builds it for the weights'
    shapes ahead of its first call (which then does not compile), e.g. while the device trains."""

    program: Callable
    x: Any
    y: Any

    def __call__(self, trainable, non_trainable) -> np.ndarray:
        return np.asarray(self.program(trainable, non_trainable, self.x, self.y))

    def compile(self, trainable, non_trainable) -> None:
        self.program.lower(trainable, non_trainable, self.x, self.y).compile()


_group_probes: dict[tuple, Callable] = {}


def _group_probe(template: keras.Model, loss: Any, split: int) -> Callable:
    """The jitted, vmapped probe of ``group_adjoints``: the first ``split`` samples are training's."""
    import jax
    import jax.numpy as jnp

    summed_loss = _summed_loss(template, loss)
    variables = template.trainable_variables + template.non_trainable_variables
    width = _state_width(template)

    def member_norms(trainable, non_trainable, x, y):
        def loss_by_states(perturbation):
            with keras.StatelessScope(state_mapping=list(zip(variables, [*trainable, *non_trainable]))):
                return summed_loss(x, y, perturbation)

        norms = jnp.linalg.norm(jax.grad(loss_by_states)(jnp.zeros((*x.shape[:2], width))), axis=-1)
        train, val = norms[:split], norms[split:]
        return jnp.stack([train[:, 0].mean(), train[:, -1].mean(), val[:, 0].mean(), val[:, -1].mean()])

    return jax.jit(jax.vmap(member_norms, in_axes=(0, 0, None, None)))
