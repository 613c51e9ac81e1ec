"""Elman RNN, LSTM and GRU: Keras' ``SimpleRNNCell``, ``LSTMCell`` and ``GRUCell`` (reset after),
step for step and weight for weight (their shapes, gate order and initializers: tested against
Keras' own layers), written as scans so the input projection leaves the loop and the compute
options (precision, unrolling, rematerialisation) apply to them as to the other architectures. The
Elman RNN and the LSTM also name their cell in the fused kernel (``fused.py``, ``kernel: fused``)."""

from __future__ import annotations

import keras
from keras import ops

from simulators.architectures.scan import ScanRecurrence


class KerasCellScan(ScanRecurrence):
    """Keras' initializers: Glorot-uniform input kernel, orthogonal recurrent kernel, zero bias."""

    def input_initializer(self, width: int) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(self.seed)

    def build_recurrent(self):
        self.recurrent_kernel = self._matrix("recurrent_kernel", keras.initializers.Orthogonal(seed=self.seed),
                                             columns=self.gates * self.units)

    def constants(self):
        return self.recurrent_kernel


class SimpleRNNScan(KerasCellScan):
    """h_t = tanh(W x_t + b + U h_{t-1})."""

    fused_cell = "rnn"

    def step(self, recurrent, state, drive):
        (h,) = state
        return (ops.tanh(drive + self.matmul(h, recurrent)),)


class LSTMScan(KerasCellScan):
    """Gates i, f, c, o in Keras' order; the forget gate's bias starts at 1 (``unit_forget_bias``)."""

    state_count = 2
    gates = 4
    fused_cell = "lstm"

    def bias_initializer(self):
        units = self.units

        def unit_forget(shape, dtype=None):
            return ops.concatenate([ops.zeros((units,)), ops.ones((units,)), ops.zeros((2 * units,))])

        return unit_forget

    def step(self, recurrent, state, drive):
        h, c = state
        i, f, g, o = ops.split(drive + self.matmul(h, recurrent), 4, axis=-1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        return (ops.sigmoid(o) * ops.tanh(c), c)


class GRUScan(KerasCellScan):
    """Keras' GRU with ``reset_after``: the reset gate scales U_h h + b_h, whose bias is the
    second row of the (2, 3 units) bias; the first row goes with the input projection."""

    gates = 3

    def bias_shape(self) -> tuple[int, ...]:
        return (2, self.gates * self.units)

    def input_bias_vector(self):
        return self.bias[0]

    def constants(self):
        return self.recurrent_kernel, self.bias[1]

    def step(self, constants, state, drive):
        recurrent, recurrent_bias = constants
        (h,) = state
        x_z, x_r, x_h = ops.split(drive, 3, axis=-1)
        h_z, h_r, h_h = ops.split(self.matmul(h, recurrent) + recurrent_bias, 3, axis=-1)
        z, r = ops.sigmoid(x_z + h_z), ops.sigmoid(x_r + h_r)
        return (z * h + (1 - z) * ops.tanh(x_h + r * h_h),)
