"""The recurrence every architecture is written as: a step scanned over time, in ``keras.ops``.

The input projection of all time steps is one matrix product before the scan (hoisted out of
the loop), and only the step runs inside ``keras.ops.scan``: on a GPU that is one small product
per step instead of two. ``Compute`` chooses the precision of the products, how many steps one
iteration of the compiled loop runs, whether the backward pass recomputes each step, and whether
a fused kernel (``fused.py``: the whole loop in one Pallas kernel) replaces the scan where it can.
"""

from __future__ import annotations

import keras
from keras import ops

from simulators.architectures.compute import DEFAULT_COMPUTE, Compute, fused_kernel_fits


class ScanRecurrence(keras.layers.Layer):
    """h_t = step(constants, h_{t-1}, V x_t + b) over time; returns the last h (or all of them).

    Subclasses set ``state_count`` (hidden state plus auxiliary states, the first is the output),
    ``probed_states`` (how many of them the adjoint probes perturb) and ``gates`` (the input
    projection's width in units), add their recurrent weights in ``build_recurrent``, and define
    ``constants`` and ``step``. Their options give ``input_init`` and, where the study learns h_0,
    ``initial_state``. ``fused_cell`` names the cell of ``fused.CELLS`` that computes the same
    step (from ``fused_recurrent``, its recurrent blocks side by side, its scalar options
    ``fused_constants`` and its learned vectors ``fused_parameters``), for ``Compute.kernel`` fused.
    """

    state_count = 1
    probed_states = 1
    gates = 1
    input_bias = True
    fused_cell: str | None = None

    def __init__(self, units: int, seed: int, options, return_sequences: bool = False,
                 compute: Compute = DEFAULT_COMPUTE, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.seed = seed
        self.options = options
        self.return_sequences = return_sequences
        self.compute = compute

    @property
    def state_width(self) -> int:
        """Width of the states the adjoint probes differentiate the loss by."""
        return self.probed_states * self.units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.gates * self.units), name="kernel",
                                      initializer=self.input_initializer(input_shape[-1]))
        self.build_recurrent()
        self.bias = self.add_weight(shape=self.bias_shape(), initializer=self.bias_initializer(), name="bias") \
            if self.input_bias else None
        learned = getattr(self.options, "initial_state", "zeros") == "trainable"
        self.initial_state = self.add_weight(shape=(self.units,), initializer="zeros", name="initial_state") \
            if learned else None

    def input_initializer(self, width: int) -> keras.initializers.Initializer:
        return input_initializer(self.options.input_init, width, self.seed)

    def bias_shape(self) -> tuple[int, ...]:
        return (self.gates * self.units,)

    def bias_initializer(self):
        return "zeros"

    def input_bias_vector(self):
        """The bias added to the input projection (all of it, unless the step adds a part)."""
        return self.bias

    def build_recurrent(self):
        raise NotImplementedError

    def constants(self):
        raise NotImplementedError

    def step(self, constants, state, drive):
        raise NotImplementedError

    def fused_recurrent(self):
        """``fused_cell``'s recurrent kernel, (units, gates * units), h @ it gate after gate: the
        step's ``constants`` unless a subclass says."""
        return self.constants()

    def fused_constants(self) -> tuple[float, ...]:
        """The scalar options ``fused_cell``'s step reads (none unless a subclass says)."""
        return ()

    def fused_parameters(self) -> tuple:
        """The learned vectors ``fused_cell``'s step reads, differentiated through the kernel (none
        unless a subclass says)."""
        return ()

    def matmul(self, a, b):
        """a @ b in the layer's precision: bfloat16 operands, float32 products and sums."""
        if self.compute.precision == "float32":
            return ops.matmul(a, b)
        if keras.backend.backend() == "jax":
            import jax.numpy as jnp

            return jnp.matmul(ops.cast(a, "bfloat16"), ops.cast(b, "bfloat16"), preferred_element_type=jnp.float32)
        return ops.cast(ops.matmul(ops.cast(a, "bfloat16"), ops.cast(b, "bfloat16")), "float32")

    def drive(self, inputs):
        """The input projection V x_t + b of every step at once."""
        projected = self.matmul(inputs, self.kernel)
        bias = self.input_bias_vector()
        return projected if bias is None else projected + bias

    def initial_states(self, drive_0):
        """(h_0, zeros...) shaped like one step's state: h_0 learned or zero, the rest zero."""
        zeros = ops.zeros((ops.shape(drive_0)[0], self.units), dtype=drive_0.dtype)
        first = zeros if self.initial_state is None else zeros + self.initial_state
        return (first, *(zeros for _ in range(self.state_count - 1)))

    def state_sequences(self, inputs, perturbation=None):
        """Every state at every step, each (batch, time, units). ``perturbation`` (batch, time,
        state_width), added to the probed states after each step, lets the trainer differentiate
        the loss by every hidden state (the adjoints) in one backward pass."""
        drive = ops.transpose(self.drive(inputs), (1, 0, 2))  # time major for the scan
        initial = self.initial_states(drive[0])
        # The adjoint probes' perturbed call keeps the scan: the same function to rounding, run once
        # an epoch on a probe batch, so a kernel that adds the perturbation would buy nothing.
        if perturbation is None and self.uses_fused_kernel():
            from simulators.architectures import fused

            states = fused.sequence(self.fused_cell, drive, ops.convert_to_tensor(self.fused_recurrent()), initial,
                                    self.compute.precision, self.fused_constants(),
                                    tuple(ops.convert_to_tensor(vector) for vector in self.fused_parameters()))
        else:
            states = self._scanned_states(drive, initial, perturbation)
        return tuple(ops.transpose(sequence, (1, 0, 2)) for sequence in states)

    def uses_fused_kernel(self) -> bool:
        """``Compute.kernel`` fused where the fused kernel serves: a cell it has, on the JAX backend
        (Pallas), with recurrent blocks a GPU program holds (``fused_kernel_fits``); elsewhere the
        scan runs, as ``remat`` is ignored off JAX."""
        return (self.compute.kernel == "fused" and self.fused_cell is not None and keras.backend.backend() == "jax"
                and fused_kernel_fits(self.fused_cell, self.units, self.compute.precision))

    def _scanned_states(self, drive, initial, perturbation):
        """Every state at every step, time major, through ``keras.ops.scan``."""
        constants = self.constants()

        def scan_step(state, drive_t):
            new_state = self.step(constants, state, drive_t)
            return new_state, new_state  # TF's scan wants outputs shaped like the carry

        def perturbed_step(state, inputs_t):
            drive_t, perturbation_t = inputs_t
            new_state = list(self.step(constants, state, drive_t))
            for k in range(self.probed_states):
                new_state[k] = new_state[k] + perturbation_t[:, k * self.units:(k + 1) * self.units]
            return tuple(new_state), tuple(new_state)

        if perturbation is None:  # training: no zero tensor to carry through every step
            return self._scan(scan_step, initial, drive)[1]
        return self._scan(perturbed_step, initial, (drive, ops.transpose(perturbation, (1, 0, 2))))[1]

    def _scan(self, step, initial, sequence):
        if self.compute.remat and keras.backend.backend() == "jax":
            import jax

            step = jax.checkpoint(step)
        return ops.scan(step, initial, sequence, unroll=self.compute.unroll)

    def call(self, inputs, perturbation=None):
        hidden = self.state_sequences(inputs, perturbation)[0]
        return hidden if self.return_sequences else hidden[:, -1]

    def compute_output_shape(self, input_shape):
        return read_out_shape(input_shape, self.units, self.return_sequences)

    def _matrix(self, name: str, initializer, columns: int | None = None) -> keras.Variable:
        return self.add_weight(shape=(self.units, columns or self.units), initializer=initializer, name=name)


def read_out_shape(input_shape: tuple, width: int, return_sequences: bool) -> tuple:
    """A recurrent layer's output shape from its input's, so building a model does not trace the
    time loop to learn it (Keras would: a model took 24 ms to build instead of 8, benchmarks/group_setup.py)."""
    return (*input_shape[:2], width) if return_sequences else (input_shape[0], width)


def input_initializer(name: str, width: int, seed: int) -> keras.initializers.Initializer:
    """The input kernel's initializer named by an architecture's ``input_init`` option."""
    if name == "normal_inverse_width":
        return keras.initializers.RandomNormal(stddev=1.0 / width, seed=seed)
    if name == "he_uniform":
        return keras.initializers.HeUniform(seed)
    return keras.initializers.GlorotUniform(seed)
