"""The whole time loop of the Elman RNN, the LSTM, the AntisymmetricRNN, the Lipschitz RNN, the
expRNN and a UnICORNN layer in one Pallas kernel, with its own VJP.

``keras.ops.scan`` runs a recurrence as a loop of small XLA kernels: on a GPU each of the 784
steps of sequential MNIST launches dozens, and their fixed costs, not arithmetic, cap the
throughput (docs/performance.md). Here one ``pallas_call`` (Triton on a GPU) runs every step:
each program takes a block of the batch, loads the recurrent matrix once, loops over time with
the states in registers and writes each step's states out. The backward pass is a second kernel
looping over time in reverse; it recomputes what a step needs from the stored states (nothing
else is kept, as with remat), and the recurrent matrix's gradient is one product over all steps
after it, not a sum carried through the loop. A cell's per-sequence matrices (the Lipschitz RNN's
A_beta and W_beta, the expRNN's expm(A)) are built outside, by the layer, once per call, and come
in as its recurrent blocks; a learned vector the step reads (the expRNN's modReLU bias) comes in as
a ``parameter`` operand with its own gradient. A cell with no recurrent matrix (UnICORNN's: its w y
is elementwise) has no blocks: its step reads the drive, its states and its vectors only.

Triton wants every loaded block's size a power of two and products at least 16 wide, so the
units are padded to a power of two >= 16 and the batch to a multiple of the cell's ``batch_block``: padded
units start at zero and stay there (their drive and weights are zero), so the padding changes no
number. JAX only, imported lazily by ``ScanRecurrence`` on the JAX backend; off a GPU the kernels
run in Pallas' interpreter (the same numbers, slowly: for the tests).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pltriton

from simulators.architectures.compute import FUSED_SHAPES, fused_units


class Cell(NamedTuple):
    """A recurrence as the kernels see it. A step's ``width`` pre-activations are drive_k + h U_k
    for the first ``drives`` (all ``gates`` where None), h U_k for the gates beyond them, and
    drive_k alone for drives beyond the gates (a cell of no gates: no recurrent block, only its
    drive; h: the first of its ``states``); ``step(pre, state, constants, parameters) -> new state``;
    ``backward(pre, previous, new, d_new, constants, parameters) -> (d_pre, d_previous)``: the
    pre-activations' cotangents and the previous states' other than through U (h's through U is
    added in the kernel). ``constants``: the layer's scalar options the step reads (eps, alpha), baked
    into the kernel; ``parameters``: its ``parameter_count`` learned vectors (units each),
    operands of the kernels, whose gradients ``parameter_gradients(d_pre, previous, states,
    constants, parameters)`` computes outside the kernel from every step's d_pre (time, batch,
    gates, units) and states (time, batch, units); or, where ``sums_parameters``, backward returns a
    third item, the step's term of each parameter's gradient ((batch block, units) each), which the
    backward kernel sums over time, and the gradients are those sums over the batch (for terms that
    d_pre and the states alone do not give). ``recomputes``: backward needs ``pre``,
    recomputed from the previous h (else it gets None and the drive is not kept);
    ``float32_products``: the products are float32 whatever the precision."""

    gates: int
    recomputes: bool
    float32_products: bool
    states: int
    step: Callable
    backward: Callable
    drives: int | None = None
    parameter_count: int = 0
    parameter_gradients: Callable | None = None
    sums_parameters: bool = False
    # One program's batch rows (16: Triton's smallest product) and warps (None: Triton's default, 4).
    # Measured on the H200 (benchmarks/gpu_ensemble.py --fused-launch, 64 batches an epoch, bf16):
    # the UnICORNN trained 189k samples/s at 32 rows and 8 warps against 163k at 16 and 4 (K=64); the
    # rnn (K=256) and the AntisymmetricRNN (K=64) did no better off 16 and 4 (gpu_h200_tune_*.json).
    batch_block: int = 16
    num_warps: int | None = None

    @property
    def driven(self) -> int:
        """The pre-activations that have a drive: the drive's width in units."""
        return self.gates if self.drives is None else self.drives

    @property
    def width(self) -> int:
        """The step's pre-activations: a drive or a recurrent block's product (or both) each."""
        return max(self.gates, self.driven)


def _rnn_step(pre, state, constants, parameters):
    return (jnp.tanh(pre[0]),)


def _rnn_backward(pre, previous, new, d_new, constants, parameters):
    """tanh' from the output itself: no recomputation."""
    (h,), (d_h,) = new, d_new
    return (d_h * (1 - h * h),), (0.0,)


def _antisymmetric_step(pre, state, constants, parameters):
    (eps,) = constants
    return (state[0] + eps * jnp.tanh(pre[0]),)


def _antisymmetric_backward(pre, previous, new, d_new, constants, parameters):
    """h_{t-1} reaches h_t directly as well as through U; tanh' from the recomputed pre-activation
    (from the states it would be (h_t - h_{t-1}) / eps, which cancels)."""
    (eps,), (d_h,) = constants, d_new
    tanh = jnp.tanh(pre[0])
    return (d_h * eps * (1 - tanh * tanh),), (d_h,)


def _lstm_gates(pre):
    i, f, g, o = pre  # Keras' gate order
    return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)


def _lstm_step(pre, state, constants, parameters):
    i, f, g, o = _lstm_gates(pre)
    c = f * state[1] + i * g
    return (o * jnp.tanh(c), c)


def _lstm_backward(pre, previous, new, d_new, constants, parameters):
    i, f, g, o = _lstm_gates(pre)
    (_, c_previous), (_, c), (d_h, d_c) = previous, new, d_new
    tanh_c = jnp.tanh(c)
    d_c = d_c + d_h * o * (1 - tanh_c * tanh_c)
    d_pre = (d_c * g * i * (1 - i), d_c * c_previous * f * (1 - f), d_c * i * (1 - g * g),
             d_h * tanh_c * o * (1 - o))
    return d_pre, (0.0, d_c * f)


def _lipschitz_step(pre, state, constants, parameters):
    """h_{t-1} + eps (A_beta h_{t-1} + tanh(W_beta h_{t-1} + drive)): gate 0 is W's, with the drive."""
    (eps,), (w, a) = constants, pre
    return (state[0] + eps * (a + jnp.tanh(w)),)


def _lipschitz_backward(pre, previous, new, d_new, constants, parameters):
    """h_{t-1} reaches h_t directly, through A and through W; tanh' from the recomputed W gate (A's
    recomputed product is not read)."""
    (eps,), (d_h,) = constants, d_new
    tanh = jnp.tanh(pre[0])
    return (d_h * eps * (1 - tanh * tanh), d_h * eps), (d_h,)


def _exponential_step(pre, state, constants, parameters):
    """modReLU(z) = sign(z) relu(|z| + b), z = B h_{t-1} + drive, b learned."""
    (bias,) = parameters
    return (jnp.sign(pre[0]) * jnp.maximum(jnp.abs(pre[0]) + bias, 0.0),)


def _exponential_backward(pre, previous, new, d_new, constants, parameters):
    """modReLU' from the output itself: dh_t/dz = sign(z)^2 [|z| + b > 0], which is 1 where h_t is
    not 0 and 0 where it is (z = 0 or |z| + b <= 0): no recomputation."""
    (h,), (d_h,) = new, d_new
    return (jnp.where(h != 0, d_h, 0.0),), (0.0,)


def _exponential_parameter_gradients(d_pre, previous, states, constants, parameters):
    """d b = sum over steps and batch of dL/dh_t sign(z) [|z| + b > 0] = d z sign(h_t) (h_t's sign is
    z's where h_t is not 0, and d z is 0 where it is)."""
    return (jnp.sum(d_pre[:, :, 0] * jnp.sign(states[0]), axis=(0, 1)),)


def _unicornn_step(pre, state, constants, parameters):
    """z_t = z_{t-1} - dt (tanh(w y_{t-1} + drive) + alpha y_{t-1}); y_t = y_{t-1} + dt z_t, as
    UnicornnLayer.step (dt = eps sigmoid(c), from the layer)."""
    (alpha,), (w, dt), (y, z) = constants, parameters, state
    z = z - dt * (jnp.tanh(w * y + pre[0]) + alpha * y)
    return (y + dt * z, z)


def _unicornn_backward(pre, previous, new, d_new, constants, parameters):
    """z_t's total cotangent is its own and y_t's through dt z_t; y_{t-1} reaches y_t directly and
    z_t through alpha and through w; tanh from the recomputed drive. w's and dt's terms of the step
    (d w = d a y_{t-1}, d dt = d y_t z_t - d z_t (tanh + alpha y_{t-1})) are summed in the kernel:
    dt's needs tanh and the cotangents, which are not kept."""
    (alpha,), (w, dt) = constants, parameters
    (y, _), (_, z), (d_y, d_z) = previous, new, d_new
    tanh = jnp.tanh(w * y + pre[0])
    d_z = d_z + dt * d_y
    d_a = -d_z * dt * (1 - tanh * tanh)
    return (d_a,), (d_y - d_z * dt * alpha + d_a * w, d_z), (d_a * y, d_y * z - d_z * (tanh + alpha * y))


def _cell(name: str, **kwargs) -> Cell:
    return Cell(**FUSED_SHAPES[name]._asdict(), **kwargs)


CELLS = {
    "rnn": _cell("rnn", states=1, step=_rnn_step, backward=_rnn_backward),
    "lstm": _cell("lstm", states=2, step=_lstm_step, backward=_lstm_backward),
    "antisymmetric": _cell("antisymmetric", states=1, step=_antisymmetric_step, backward=_antisymmetric_backward),
    "lipschitz": _cell("lipschitz", states=1, step=_lipschitz_step, backward=_lipschitz_backward, drives=1),
    "exponential": _cell("exponential", states=1, step=_exponential_step, backward=_exponential_backward,
                         parameter_count=1, parameter_gradients=_exponential_parameter_gradients),
    "unicornn": _cell("unicornn", states=2, step=_unicornn_step, backward=_unicornn_backward, drives=1,
                      parameter_count=2, sums_parameters=True, batch_block=32, num_warps=8),
}


def sequence(cell_name: str, drive, recurrent, initial: tuple, precision: str = "float32",
             constants: tuple[float, ...] = (), parameters: tuple = ()) -> tuple:
    """Every state at every step, time major, through the fused kernels. ``drive`` (time, batch,
    driven gates * units): the input projection of every step; ``recurrent`` (units, gates *
    units): the recurrent kernel in Keras' layout (h @ recurrent, gate after gate; (units, 0) for a
    cell of no gates, not passed to the kernels); ``initial``:
    the states at t = 0, (batch, units) each; ``precision``: bfloat16 multiplies bf16 operands
    (float32 products and sums), unless the cell's products are float32; ``constants``: the cell's
    scalar options; ``parameters``: its learned vectors, (units,) each, differentiable. Returns
    one (time, batch, units) array per state, h first."""
    cell = CELLS[cell_name]
    if len(parameters) != cell.parameter_count:
        raise ValueError(f"the {cell_name} cell reads {cell.parameter_count} parameters, got {len(parameters)}")
    precision = "float32" if cell.float32_products else precision
    steps, batch, _ = drive.shape
    units = recurrent.shape[0]
    padded_units, padded_batch = fused_units(units), -(-batch // cell.batch_block) * cell.batch_block
    drive = _pad(drive.reshape(steps, batch, cell.driven, units), {1: padded_batch, 3: padded_units})
    recurrent = recurrent.reshape(units, cell.gates, units).transpose(1, 0, 2)  # U_k = recurrent[k]
    recurrent = _pad(recurrent, {1: padded_units, 2: padded_units})
    initial = tuple(_pad(state, {0: padded_batch, 1: padded_units}) for state in initial)
    parameters = tuple(_pad(vector, {0: padded_units}) for vector in parameters)  # padded units: 0
    states = _fused(cell, precision, tuple(map(float, constants)), drive, recurrent, initial, parameters)
    return tuple(state[:, :batch, :units] for state in states)


def _pad(array, sizes: dict[int, int]):
    """``array`` with zeros after its end along each axis of ``sizes``, up to that size."""
    return jnp.pad(array, [(0, sizes.get(axis, size) - size) for axis, size in enumerate(array.shape)])


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _fused(cell: Cell, precision: str, constants: tuple, drive, recurrent, initial, parameters):
    return _forward(cell, precision, constants, drive, recurrent, initial, parameters)


def _fused_forward(cell: Cell, precision: str, constants: tuple, drive, recurrent, initial, parameters):
    states = _forward(cell, precision, constants, drive, recurrent, initial, parameters)
    return states, (drive if cell.recomputes else None, recurrent, initial, parameters, states)


def _fused_backward(cell: Cell, precision: str, constants: tuple, residuals, cotangents):
    """d z (every gate's pre-activation) and d h_0 (c_0) from the reverse kernel; dU = sum over
    steps of h_{t-1}^T dz_t, one product over time and batch (cuDNN's split too): no (units,
    gates * units) sum per program to carry through the loop; d drive is the driven gates' d z;
    the learned parameters' gradients from d z and the states, outside the kernel too (or from the
    kernel's sums over time, where the cell ``sums_parameters``)."""
    drive, recurrent, initial, parameters, states = residuals
    previous = tuple(jnp.concatenate([first[None], sequence[:-1]]) for first, sequence in zip(initial, states))
    d_pre, d_initial, sums = _backward(cell, precision, constants, drive, recurrent, parameters, previous, states,
                                       cotangents)
    operand = _operand_dtype(precision)
    d_recurrent = jnp.einsum("tbh,tbgk->ghk", previous[0].astype(operand), d_pre[:, :, :cell.gates].astype(operand),
                             preferred_element_type=jnp.float32) if cell.gates else jnp.zeros_like(recurrent)
    if cell.sums_parameters:
        d_parameters = tuple(jnp.sum(total, axis=0) for total in sums)
    else:
        d_parameters = cell.parameter_gradients(d_pre, previous, states, constants, parameters) if parameters else ()
    d_drive = d_pre if cell.driven == cell.width else d_pre[:, :, :cell.driven]
    return d_drive, d_recurrent, d_initial, d_parameters


_fused.defvjp(_fused_forward, _fused_backward)


def _forward(cell: Cell, precision: str, constants: tuple, drive, recurrent, initial, parameters) -> tuple:
    steps, batch, _, units = drive.shape
    sequence_shape = jax.ShapeDtypeStruct((steps, batch, units), jnp.float32)
    return _call(cell, functools.partial(_forward_kernel, cell, precision, constants, steps), batch,
                 [(drive, 1), *_recurrent_operand(cell, recurrent), *((vector, None) for vector in parameters),
                  *((state, 0) for state in initial)],
                 [(sequence_shape, 1)] * cell.states)


def _backward(cell: Cell, precision: str, constants: tuple, drive, recurrent, parameters, previous, states,
              cotangents):
    steps, batch, units = states[0].shape
    operands = [*_recurrent_operand(cell, recurrent), *((vector, None) for vector in parameters),
                *([(drive, 1)] if cell.recomputes else []),
                *((array, 1) for array in (*previous, *states, *cotangents))]
    d_pre = jax.ShapeDtypeStruct((steps, batch, cell.width, units), jnp.float32)
    d_state = jax.ShapeDtypeStruct((batch, units), jnp.float32)  # also a parameter's sum over time, per batch row
    sums = len(parameters) if cell.sums_parameters else 0
    d_pre, *rest = _call(cell, functools.partial(_backward_kernel, cell, precision, constants, steps), batch,
                         operands,
                         [(d_pre, 1), *[(d_state, 0)] * (cell.states + sums)])
    return d_pre, tuple(rest[:cell.states]), tuple(rest[cell.states:])


def _recurrent_operand(cell: Cell, recurrent) -> list:
    """The recurrent blocks as an operand the kernels read whole; none for a cell of no gates."""
    return [(recurrent, None)] if cell.gates else []


def _call(cell: Cell, kernel, batch: int, operands: list, outputs: list):
    """``kernel`` over a grid of the cell's batch blocks. ``operands`` and ``outputs``: (array or shape, the
    axis that is the batch, None for one block that every program reads whole)."""
    return pl.pallas_call(
        kernel,
        grid=(batch // cell.batch_block,),
        in_specs=[_block(array.shape, axis, cell.batch_block) for array, axis in operands],
        out_specs=[_block(shape.shape, axis, cell.batch_block) for shape, axis in outputs],
        out_shape=[shape for shape, _ in outputs],
        compiler_params=pltriton.CompilerParams(num_warps=cell.num_warps),  # Triton, not Mosaic GPU
        interpret=_interpret(),
    )(*(array for array, _ in operands))


def _interpret() -> bool:
    """Off a GPU, Pallas' interpreter runs the kernels (a test may say otherwise, to lower them)."""
    return jax.default_backend() != "gpu"


def _block(shape: tuple[int, ...], batch_axis: int | None, rows: int) -> pl.BlockSpec:
    """One program's block: its ``rows`` of the batch axis, all of every other axis."""
    block = tuple(rows if axis == batch_axis else size for axis, size in enumerate(shape))
    return pl.BlockSpec(block, lambda i: tuple(i if axis == batch_axis else 0 for axis in range(len(shape))))


def _operand_dtype(precision: str):
    return jnp.bfloat16 if precision == "bfloat16" else jnp.float32


def _load_recurrent(recurrent_ref, precision: str) -> tuple:
    """U_k of every gate, loaded once per program (each (units, units): a Triton-sized block)."""
    if recurrent_ref is None:
        return ()
    return tuple(recurrent_ref[k].astype(_operand_dtype(precision)) for k in range(recurrent_ref.shape[0]))


def _pre_activations(cell: Cell, drive_ref, t, h, recurrent: tuple, precision: str) -> tuple:
    """drive_k(t) + h U_k for every driven gate k, h U_k for the others, drive_k(t) for a drive
    beyond the gates."""
    h = h.astype(_operand_dtype(precision))
    products = [jnp.dot(h, matrix, preferred_element_type=jnp.float32) for matrix in recurrent]
    return tuple(products[k] if k >= cell.driven else
                 drive_ref[t, :, k, :] + products[k] if k < cell.gates else drive_ref[t, :, k, :]
                 for k in range(cell.width))


def _forward_kernel(cell: Cell, precision: str, constants: tuple, steps: int, drive_ref, *refs):
    recurrent_ref, refs = (refs[0], refs[1:]) if cell.gates else (None, refs)
    parameter_refs, refs = refs[:cell.parameter_count], refs[cell.parameter_count:]
    initial_refs, sequence_refs = refs[:cell.states], refs[cell.states:]
    recurrent = _load_recurrent(recurrent_ref, precision)
    parameters = tuple(ref[...] for ref in parameter_refs)

    def step(t, state):
        pre = _pre_activations(cell, drive_ref, t, state[0], recurrent, precision)
        new = cell.step(pre, state, constants, parameters)
        for ref, value in zip(sequence_refs, new):
            ref[t] = value
        return new

    jax.lax.fori_loop(0, steps, step, tuple(ref[...] for ref in initial_refs))


def _backward_kernel(cell: Cell, precision: str, constants: tuple, steps: int, *refs):
    """Time in reverse: each step's total cotangent (its output's plus the next step's), the
    cell's backward, every gate's d z written out, and the cotangent carried to the step before
    (h's through U added to what the cell passes on directly); where the cell ``sums_parameters``,
    its parameters' terms carried and summed too."""
    recurrent_ref, refs = (refs[0], refs[1:]) if cell.gates else (None, refs)
    parameter_refs, refs = refs[:cell.parameter_count], refs[cell.parameter_count:]
    drive_ref, refs = (refs[0], refs[1:]) if cell.recomputes else (None, refs)
    n = cell.states
    previous_refs, state_refs, cotangent_refs = refs[:n], refs[n:2 * n], refs[2 * n:3 * n]
    d_pre_ref, d_initial_refs, sum_refs = refs[3 * n], refs[3 * n + 1:4 * n + 1], refs[4 * n + 1:]
    recurrent = _load_recurrent(recurrent_ref, precision)
    parameters = tuple(ref[...] for ref in parameter_refs)
    operand = _operand_dtype(precision)

    def step(s, carried):
        t = steps - 1 - s
        previous = tuple(ref[t] for ref in previous_refs)
        pre = _pre_activations(cell, drive_ref, t, previous[0], recurrent, precision) if cell.recomputes else None
        carried, summed = carried[:n], carried[n:]
        d_new = tuple(ref[t] + d for ref, d in zip(cotangent_refs, carried))
        d_pre, (d_h, *d_rest), *terms = cell.backward(pre, previous, tuple(ref[t] for ref in state_refs), d_new,
                                                      constants, parameters)
        for k, d in enumerate(d_pre):
            d_pre_ref[t, :, k, :] = d
            if k < cell.gates:
                d_h = d_h + jax.lax.dot_general(d.astype(operand), recurrent[k], (((1,), (1,)), ((), ())),
                                                preferred_element_type=jnp.float32)  # d U_k^T
        summed = tuple(total + term for total, term in zip(summed, *terms)) if terms else ()
        return (d_h, *d_rest, *summed)

    zeros = tuple(jnp.zeros(ref.shape, jnp.float32) for ref in (*d_initial_refs, *sum_refs))
    for ref, value in zip((*d_initial_refs, *sum_refs), jax.lax.fori_loop(0, steps, step, zeros)):
        ref[...] = value
