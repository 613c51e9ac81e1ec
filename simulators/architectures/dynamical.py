"""Recurrent networks from discretised dynamical systems: AntisymmetricRNN, Lipschitz RNN,
expRNN and UnICORNN, written against ``keras.ops`` only, so one code runs on every backend.

Each is a ``ScanRecurrence`` (``scan.py``): the per-sequence matrices (W - W^T - gamma I,
expm(A), ...) are computed once per forward pass, and only the step runs inside the scan.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from simulators.architectures.compute import DEFAULT_COMPUTE, Compute
from simulators.architectures.options import (
    AntisymmetricOptions,
    ExponentialOptions,
    LipschitzOptions,
    UnicornnOptions,
)
from simulators.architectures.scan import ScanRecurrence, read_out_shape
from simulators.architectures.update_rule import UpdateRule


def skew(matrix):
    return matrix - ops.transpose(matrix)


class AntisymmetricRNN(ScanRecurrence):
    """h_t = h_{t-1} + eps tanh((W - W^T - gamma I) h_{t-1} + V x_t + b)  (Chang et al., 2019)."""

    options: AntisymmetricOptions
    fused_cell = "antisymmetric"

    def build_recurrent(self):
        root = self.units if self.options.recurrent_std == "sigma_over_units" else math.sqrt(self.units)
        initializer = keras.initializers.RandomNormal(stddev=self.options.sigma / root, seed=self.seed + 1)
        self.recurrent = self._matrix("recurrent", initializer)

    def constants(self):
        """(W - W^T - gamma I)^T, transposed once per call rather than once per step."""
        return ops.transpose(skew(self.recurrent) - self.options.gamma * ops.eye(self.units))

    def step(self, matrix_t, state, drive):
        (h,) = state
        return (h + self.options.eps * ops.tanh(self.matmul(h, matrix_t) + drive),)

    def fused_constants(self) -> tuple[float, ...]:
        return (self.options.eps,)


def lipschitz_composition(matrix, beta: float, gamma: float):
    """(1 - beta)(M + M^T) + beta (M - M^T) - gamma I (Erichson et al., 2021)."""
    units = ops.shape(matrix)[0]
    return (1 - beta) * (matrix + ops.transpose(matrix)) + beta * skew(matrix) - gamma * ops.eye(units)


class LipschitzRNN(ScanRecurrence):
    """h_t = h_{t-1} + eps (A h_{t-1} + tanh(W h_{t-1} + U x_t + b))."""

    options: LipschitzOptions
    fused_cell = "lipschitz"

    def build_recurrent(self):
        seeds = (self.seed + 1, self.seed + 1) if self.options.tied_init else (self.seed + 1, self.seed + 2)
        self.m_a, self.m_w = (
            self._matrix(name, keras.initializers.RandomNormal(stddev=self.options.sigma, seed=seed))
            for name, seed in zip(("m_a", "m_w"), seeds)
        )

    def constants(self):
        o = self.options
        return (
            ops.transpose(lipschitz_composition(self.m_a, o.beta, o.gamma_A)),
            ops.transpose(lipschitz_composition(self.m_w, o.beta, o.gamma_W)),
        )

    def step(self, constants, state, drive):
        a_t, w_t = constants
        (h,) = state
        return (h + self.options.eps * (self.matmul(h, a_t) + ops.tanh(self.matmul(h, w_t) + drive)),)

    def fused_recurrent(self):
        """[W_beta^T | A_beta^T]: the fused cell's gate 0 (with the drive) is W's, gate 1 A's."""
        a_t, w_t = self.constants()
        return ops.concatenate([w_t, a_t], axis=1)

    def fused_constants(self) -> tuple[float, ...]:
        return (self.options.eps,)


def matrix_exponential(matrix):
    """expm by the backend's own routine (Pade approximation with scaling and squaring, accurate
    to float32 rounding, differentiable): keras.ops has none."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.linalg.expm(matrix)
    if backend == "jax":
        import jax

        return jax.scipy.linalg.expm(matrix)
    if backend == "torch":
        import torch

        return torch.linalg.matrix_exp(matrix)
    raise NotImplementedError(f"expm on the {backend} backend; use tensorflow, jax or torch")


def orthogonal_polish(matrix):
    """One Newton-Schulz step towards the nearest orthogonal matrix, B (3I - B^T B) / 2: a float32
    expm of a skew matrix is orthogonal to about n * 1e-8 (1.6e-6 at n = 128), this step brings it
    to float32 rounding (5e-7 at n = 256). At an orthogonal B its derivative is the identity on
    B's tangent space, so gradients are unchanged."""
    units = ops.shape(matrix)[0]
    return ops.matmul(matrix, 3 * ops.eye(units, dtype=matrix.dtype) - ops.matmul(ops.transpose(matrix), matrix)) / 2


def _block_skew(units: int, angles):
    """A block-diagonal skew-symmetric A of 2x2 blocks [[0, s], [-s, 0]] (an odd last unit gets
    0); expm of a block is a rotation by s."""
    import numpy as np

    upper = np.zeros((units, units), dtype="float32")
    upper[np.arange(0, 2 * len(angles), 2), np.arange(1, 2 * len(angles), 2)] = angles
    return upper - upper.T


def henaff_skew(units: int, seed: int):
    """Henaff et al. (2016): s ~ U(-pi, pi), rotations spread over the whole circle."""
    import numpy as np

    return _block_skew(units, np.random.default_rng(seed).uniform(-np.pi, np.pi, size=units // 2))


def cayley_skew(units: int, seed: int):
    """expRNN's Cayley initialisation (its reference code, after Helfrich et al. 2018):
    s = -sqrt((1 - cos t) / (1 + cos t)) = -tan(t/2), t ~ U(0, pi/2), so s lies in [-1, 0]:
    slow rotations, what expRNN's pixel-by-pixel MNIST runs start from."""
    import numpy as np

    return _block_skew(units, -np.tan(np.random.default_rng(seed).uniform(0, np.pi / 2, size=units // 2) / 2))


class ExponentialRNN(ScanRecurrence):
    """h_t = modReLU(B h_{t-1} + U x_t), B = expm(A) orthogonal by construction, so it stays
    orthogonal through any optimiser step (Lezcano-Casado & Martinez-Rubio, 2019).

    ``log_recurrent`` holds A itself; the forward pass reads its skew part (A - A^T) / 2, which is
    A while A is skew, and every gradient step on A is skew (the gradient of the skew part is), so
    A stays skew. A plain SGD step on it at rate r is then exactly the study's update of A
    (A <- A - r skew(dL/dA), mirrored from its upper triangle), and Adam on it the paper's.
    """

    input_bias = False
    options: ExponentialOptions
    fused_cell = "exponential"  # its products float32 there too

    def build_recurrent(self):
        initial = (henaff_skew if self.options.init == "henaff" else cayley_skew)(self.units, self.seed)
        self.log_recurrent = self._matrix("log_recurrent", keras.initializers.Constant(initial))
        self.modrelu_bias = self.add_weight(
            shape=(self.units,), initializer=keras.initializers.RandomUniform(-0.01, 0.01, seed=self.seed + 3),
            name="modrelu_bias",
        )

    def update_rules(self) -> dict[str, UpdateRule]:
        """A trains by its own rule (see ``skew_optimizer``), the rest by Adam."""
        rule = UpdateRule(self.options.skew_optimizer, self.options.skew_learning_rate_scale)
        return {self.log_recurrent.path: rule}

    def orthogonal_matrix(self):
        return orthogonal_polish(matrix_exponential(skew(self.log_recurrent) / 2))

    def constants(self):
        return ops.transpose(self.orthogonal_matrix())

    def step(self, b_t, state, drive):
        (h,) = state
        z = ops.matmul(h, b_t) + drive  # float32 always: bf16 would undo B's orthogonality
        return (ops.sign(z) * ops.relu(ops.abs(z) + self.modrelu_bias),)

    def fused_parameters(self) -> tuple:
        return (self.modrelu_bias,)


class UnicornnLayer(ScanRecurrence):
    """z_t = z_{t-1} - dt sigmoid(c) (tanh(w y_{t-1} + V x_t + b) + alpha y_{t-1});
    y_t = y_{t-1} + dt sigmoid(c) z_t  (Rusch & Mishra, 2021): diagonal recurrent weights.
    Its state is (y, z), both probed by the adjoints; it outputs y."""

    state_count = 2
    probed_states = 2
    options: UnicornnOptions
    fused_cell = "unicornn"  # no recurrent matrix: w and dt are the kernel's learned vectors

    def __init__(self, units: int, seed: int, options: UnicornnOptions, recurrent_seed: int | None = None, **kwargs):
        super().__init__(units, seed, options, **kwargs)
        self.recurrent_seed = seed if recurrent_seed is None else recurrent_seed

    def build_recurrent(self):
        uniform = keras.initializers.RandomUniform
        self.w = self.add_weight(shape=(self.units,), initializer=uniform(0, 1, seed=self.recurrent_seed + 1), name="w")
        self.c = self.add_weight(shape=(self.units,), initializer=uniform(-0.1, 0.1, seed=self.recurrent_seed + 2),
                                 name="c")

    def constants(self):
        return self.options.eps * ops.sigmoid(self.c)

    def step(self, dt, state, drive):
        y, z = state
        z = z - dt * (ops.tanh(self.w * y + drive) + self.options.alpha * y)
        return (y + dt * z, z)

    def fused_recurrent(self):
        """No recurrent blocks: (units, 0)."""
        return ops.zeros((self.units, 0))

    def fused_constants(self) -> tuple[float, ...]:
        return (self.options.alpha,)

    def fused_parameters(self) -> tuple:
        """w and dt = eps sigmoid(c), computed once per call: c's gradient flows through it."""
        return (self.w, self.constants())


class Unicornn(keras.layers.Layer):
    """Stacked UnICORNN layers, each reading the previous one's y sequence. The read-out gets
    every layer's (y, z), concatenated in layer order, or the top layer's y (``readout``). With
    ``Compute.kernel`` fused each layer runs its own fused kernel (``fused_cell``) over the
    previous one's y sequence."""

    fused_cell = "unicornn"

    def __init__(self, units: int, seed: int, options: UnicornnOptions, return_sequences: bool = False,
                 compute: Compute = DEFAULT_COMPUTE, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.options = options
        self.return_sequences = return_sequences
        self.compute = compute
        self.stack = [
            UnicornnLayer(units, seed + 10 * depth, options, recurrent_seed=seed if options.tied_init else None,
                          compute=compute, name=f"layer_{depth}")
            for depth in range(options.layers)
        ]

    @property
    def state_width(self) -> int:
        return sum(layer.state_width for layer in self.stack)

    def uses_fused_kernel(self) -> bool:
        return all(layer.uses_fused_kernel() for layer in self.stack)

    def build(self, input_shape):
        for layer in self.stack:
            layer.build(input_shape)
            input_shape = (*input_shape[:-1], self.units)

    def call(self, inputs, perturbation=None):
        sequence, every_state, offset = inputs, [], 0
        for layer in self.stack:
            width = layer.state_width
            probe = None if perturbation is None else perturbation[..., offset:offset + width]
            states = layer.state_sequences(sequence, probe)
            every_state += states
            # the layer above reads y_t as computed: as in the study's code, a probe of y_t reaches it
            # only through the next step (dL/dh_t is the gradient by the state tensor of step t)
            sequence = states[0] if probe is None else states[0] - probe[..., :self.units]
            offset += width
        top_y = states[0]  # as probed: the read-out reads the state tensor itself
        read = ops.concatenate(every_state, axis=-1) if self.options.readout == "all_states" else top_y
        return read if self.return_sequences else read[:, -1]

    def compute_output_shape(self, input_shape):
        width = self.state_width if self.options.readout == "all_states" else self.units
        return read_out_shape(input_shape, width, self.return_sequences)
