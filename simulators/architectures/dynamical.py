"""Recurrent networks from discretised dynamical systems: AntisymmetricRNN, Lipschitz RNN,
expRNN and UnICORNN, written against ``keras.ops`` only, so one code runs on every backend.

Each is a ``ScanRecurrence``: the input projection of all time steps is one matrix product,
the per-sequence matrices (W - W^T - gamma I, expm(A), ...) are computed once per forward pass,
and only the step itself runs inside ``keras.ops.scan`` over time.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from simulators.architectures.options import (
    AntisymmetricOptions,
    ExponentialOptions,
    LipschitzOptions,
    UnicornnOptions,
)


class ScanRecurrence(keras.layers.Layer):
    """h_t = step(constants, h_{t-1}, W_in x_t + b) over time; returns the last h (or all of them).

    Subclasses set ``state_count`` (hidden state plus auxiliary states, the first is the output),
    add their recurrent weights in ``build_recurrent``, and define ``constants`` and ``step``.
    """

    state_count = 1
    input_bias = True

    def __init__(self, units: int, seed: int, return_sequences: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.seed = seed
        self.return_sequences = return_sequences

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units), initializer=keras.initializers.GlorotUniform(self.seed), name="kernel"
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias") if self.input_bias else None
        self.build_recurrent()

    def build_recurrent(self):
        raise NotImplementedError

    def constants(self):
        raise NotImplementedError

    def step(self, constants, state, drive):
        raise NotImplementedError

    def call(self, inputs, perturbation=None):
        """``perturbation`` (batch, time, units), added to each h_t, lets the trainer
        differentiate the loss by every hidden state (the adjoints) in one backward pass."""
        drive = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            drive = drive + self.bias
        drive = ops.transpose(drive, (1, 0, 2))  # time major for the scan
        constants = self.constants()
        initial = tuple(ops.zeros_like(drive[0]) for _ in range(self.state_count))

        def scan_step(state, drive_t):
            new_state = self.step(constants, state, drive_t)
            return new_state, new_state  # TF's scan wants outputs shaped like the carry

        def perturbed_step(state, inputs_t):
            drive_t, perturbation_t = inputs_t
            new_state = self.step(constants, state, drive_t)
            new_state = (new_state[0] + perturbation_t, *new_state[1:])
            return new_state, new_state

        if perturbation is None:  # training: no zero tensor to carry through every step
            last, outputs = ops.scan(scan_step, initial, drive)
        else:
            last, outputs = ops.scan(perturbed_step, initial, (drive, ops.transpose(perturbation, (1, 0, 2))))
        return ops.transpose(outputs[0], (1, 0, 2)) if self.return_sequences else last[0]

    def _matrix(self, name: str, initializer) -> keras.Variable:
        return self.add_weight(shape=(self.units, self.units), initializer=initializer, name=name)


def skew(matrix):
    return matrix - ops.transpose(matrix)


class AntisymmetricRNN(ScanRecurrence):
    """h_t = h_{t-1} + eps tanh((W - W^T - gamma I) h_{t-1} + V x_t + b)  (Chang et al., 2019)."""

    def __init__(self, units: int, seed: int, options: AntisymmetricOptions, **kwargs):
        super().__init__(units, seed, **kwargs)
        self.options = options

    def build_recurrent(self):
        std = self.options.sigma / math.sqrt(self.units)
        self.recurrent = self._matrix("recurrent", keras.initializers.RandomNormal(stddev=std, seed=self.seed + 1))

    def constants(self):
        """(W - W^T - gamma I)^T, transposed once per call rather than once per step."""
        return ops.transpose(skew(self.recurrent) - self.options.gamma * ops.eye(self.units))

    def step(self, matrix_t, state, drive):
        (h,) = state
        return (h + self.options.eps * ops.tanh(ops.matmul(h, matrix_t) + drive),)


def lipschitz_composition(matrix, beta: float, gamma: float):
    """(1 - beta)(M + M^T) + beta (M - M^T) - gamma I (Erichson et al., 2021)."""
    units = ops.shape(matrix)[0]
    return (1 - beta) * (matrix + ops.transpose(matrix)) + beta * skew(matrix) - gamma * ops.eye(units)


class LipschitzRNN(ScanRecurrence):
    """h_t = h_{t-1} + eps (A h_{t-1} + tanh(W h_{t-1} + U x_t + b))."""

    def __init__(self, units: int, seed: int, options: LipschitzOptions, **kwargs):
        super().__init__(units, seed, **kwargs)
        self.options = options

    def build_recurrent(self):
        self.m_a = self._matrix("m_a", keras.initializers.RandomNormal(stddev=self.options.sigma, seed=self.seed + 1))
        self.m_w = self._matrix("m_w", keras.initializers.RandomNormal(stddev=self.options.sigma, seed=self.seed + 2))

    def constants(self):
        o = self.options
        return (
            ops.transpose(lipschitz_composition(self.m_a, o.beta, o.gamma_A)),
            ops.transpose(lipschitz_composition(self.m_w, o.beta, o.gamma_W)),
        )

    def step(self, constants, state, drive):
        a_t, w_t = constants
        (h,) = state
        return (h + self.options.eps * (ops.matmul(h, a_t) + ops.tanh(ops.matmul(h, w_t) + drive)),)


def matrix_exponential(matrix, squarings: int = 8, terms: int = 12):
    """expm by scaling and squaring with a Taylor polynomial: differentiable keras.ops, no
    backend call. Accurate to float32 rounding for ||A|| up to a few hundred (2^8 scaling)."""
    units = ops.shape(matrix)[0]
    scaled = matrix / (2.0**squarings)
    result = ops.eye(units, dtype=matrix.dtype)
    term = ops.eye(units, dtype=matrix.dtype)
    for k in range(1, terms + 1):
        term = ops.matmul(term, scaled) / k
        result = result + term
    for _ in range(squarings):
        result = ops.matmul(result, result)
    return result


def _block_skew(units: int, angles):
    """The upper triangle of a block-diagonal skew-symmetric A, 2x2 blocks [[0, s], [-s, 0]]
    (the layer takes A - A^T; an odd last unit gets 0); expm of a block is a rotation by s."""
    import numpy as np

    upper = np.zeros((units, units), dtype="float32")
    upper[np.arange(0, 2 * len(angles), 2), np.arange(1, 2 * len(angles), 2)] = angles
    return upper


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
    """h_t = modReLU(B h_{t-1} + U x_t), B = expm(A - A^T) orthogonal by construction, so it stays
    orthogonal through any optimiser step (Lezcano-Casado & Martinez-Rubio, 2019)."""

    input_bias = False

    def __init__(self, units: int, seed: int, options: ExponentialOptions, **kwargs):
        super().__init__(units, seed, **kwargs)
        self.options = options

    def build_recurrent(self):
        initial = (henaff_skew if self.options.init == "henaff" else cayley_skew)(self.units, self.seed)
        self.log_recurrent = self._matrix("log_recurrent", keras.initializers.Constant(initial))
        self.modrelu_bias = self.add_weight(
            shape=(self.units,), initializer=keras.initializers.RandomUniform(-0.01, 0.01, seed=self.seed + 3), name="modrelu_bias"
        )

    def orthogonal_matrix(self):
        return matrix_exponential(skew(self.log_recurrent))

    def constants(self):
        return ops.transpose(self.orthogonal_matrix())

    def step(self, b_t, state, drive):
        (h,) = state
        z = ops.matmul(h, b_t) + drive
        return (ops.sign(z) * ops.relu(ops.abs(z) + self.modrelu_bias),)


class UnicornnLayer(ScanRecurrence):
    """z_t = z_{t-1} - dt sigmoid(c) (tanh(w y_{t-1} + V x_t + b) + alpha y_{t-1});
    y_t = y_{t-1} + dt sigmoid(c) z_t  (Rusch & Mishra, 2021): diagonal recurrent weights."""

    state_count = 2

    def __init__(self, units: int, seed: int, options: UnicornnOptions, **kwargs):
        super().__init__(units, seed, **kwargs)
        self.options = options

    def build_recurrent(self):
        self.w = self.add_weight(shape=(self.units,), initializer=keras.initializers.RandomUniform(0, 1, seed=self.seed + 1), name="w")
        self.c = self.add_weight(shape=(self.units,), initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=self.seed + 2), name="c")

    def constants(self):
        return self.options.eps * ops.sigmoid(self.c)

    def step(self, dt, state, drive):
        y, z = state
        z = z - dt * (ops.tanh(self.w * y + drive) + self.options.alpha * y)
        return (y + dt * z, z)


def antisymmetric(hidden_dim: int, seed: int, options: AntisymmetricOptions, return_sequences=False) -> keras.layers.Layer:
    return AntisymmetricRNN(hidden_dim, seed, options, return_sequences=return_sequences, name="recurrent")


def lipschitz(hidden_dim: int, seed: int, options: LipschitzOptions, return_sequences=False) -> keras.layers.Layer:
    return LipschitzRNN(hidden_dim, seed, options, return_sequences=return_sequences, name="recurrent")


def exponential(hidden_dim: int, seed: int, options: ExponentialOptions, return_sequences=False) -> keras.layers.Layer:
    return ExponentialRNN(hidden_dim, seed, options, return_sequences=return_sequences, name="recurrent")


def unicornn(hidden_dim: int, seed: int, options: UnicornnOptions, return_sequences=False) -> keras.Sequential:
    """Stacked layers, each reading the previous one's whole state sequence."""
    layers = [
        UnicornnLayer(hidden_dim, seed + 10 * depth, options, return_sequences=return_sequences or depth < options.layers - 1)
        for depth in range(options.layers)
    ]
    return keras.Sequential(layers, name="recurrent")
