"""The baseline taskgen is measured against: the research-code pattern of a recurrent cell
stepped by a Python ``for t in range(T)`` loop, which ``tf.function`` (here Keras' own
``fit`` train step) traces into a graph with one copy of the cell per time step.

The cell math is taskgen's own, taken from the layer taskgen builds, not copied: the
``step``/``constants`` of its scan layers (``simulators.architectures``). Only the time loop
differs: per step the input projection, one cell step and (for stacked UnICORNN) every layer,
where taskgen projects all steps at once and scans. Per-sequence constants (W - W^T, expm(A), ...) are computed once per
forward pass, as in taskgen, so the baseline is not slowed by anything but the unrolling.
"""

from __future__ import annotations

import keras
from keras import ops

from simulators.architectures import architecture_options, recurrent_layer_factory
from simulators.architectures.dynamical import Unicornn
from simulators.architectures.scan import ScanRecurrence
from simulators.tasks.base import TaskData


def _cells(layer: keras.layers.Layer) -> list[ScanRecurrence]:
    """The scan layers of taskgen's own layer, bottom first, used only for their step."""
    return list(layer.stack) if isinstance(layer, Unicornn) else [layer]


class UnrolledRecurrence(keras.layers.Layer):
    """Steps taskgen's own recurrent layer (its weights, initial states and read-out) through time
    in a Python loop."""

    def __init__(self, layer: keras.layers.Layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape):
        self.layer.build(input_shape)

    def call(self, inputs):
        cells = _cells(self.layer)
        batch = ops.shape(inputs)[0]
        states = [_initial_state(cell, batch) for cell in cells]
        constants = [cell.constants() for cell in cells]
        output = None
        for t in range(inputs.shape[1]):  # the unrolled time loop
            output = inputs[:, t, :]
            for depth, cell in enumerate(cells):
                output, states[depth] = _step(cell, constants[depth], output, states[depth])
        if isinstance(self.layer, Unicornn) and self.layer.options.readout == "all_states":
            return ops.concatenate([state for cell_states in states for state in cell_states], axis=-1)
        return output


def _initial_state(cell: ScanRecurrence, batch):
    return list(cell.initial_states(ops.zeros((batch, cell.units))))


def _step(cell: ScanRecurrence, constants, x_t, state):
    """(output, new state) of one time step: its own input projection, then the cell's step."""
    new_state = cell.step(constants, tuple(state), cell.drive(x_t))
    return new_state[0], list(new_state)


def build_unrolled_model(architecture: str, hidden_dim: int, seed: int, data: TaskData) -> keras.Model:
    """The same input and read-out as ``simulators.models.build_model``, the recurrence unrolled."""
    inputs = keras.Input(shape=(data.steps, data.features), name="sequence")
    layer = recurrent_layer_factory(architecture)(hidden_dim, seed, architecture_options(architecture))
    state = UnrolledRecurrence(layer, name="recurrent")(inputs)
    outputs = keras.layers.Dense(data.n_classes, kernel_initializer=keras.initializers.GlorotUniform(seed + 1),
                                 name="readout")(state)
    return keras.Model(inputs, outputs, name=f"unrolled_{architecture}")
