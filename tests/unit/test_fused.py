"""The fused recurrent kernels (Pallas, run here by its interpreter): the states and gradients of
the scan, for every member of a vmapped group; and kernels Triton can take, lowered for a GPU."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from simulators.architectures import ARCHITECTURE_NAMES, recurrent_layer_factory  # noqa: E402
from simulators.architectures.compute import FUSED_ARCHITECTURES  # noqa: E402
from simulators.architectures.fused import CELLS, sequence  # noqa: E402

STEPS, BATCH, UNITS, MEMBERS = 8, 20, 12, 2  # batch and units off Triton's blocks: the padding is tested too
CONSTANTS = {"antisymmetric": (0.3,)}  # eps, larger than the study's 0.01 so the tanh path weighs


def scanned(cell_name: str, drive, recurrent, initial, precision: str, constants: tuple = ()) -> tuple:
    """The scan path's recurrence (classic.py's steps, ScanRecurrence.matmul's precision) in JAX."""
    operand = jnp.bfloat16 if precision == "bfloat16" else jnp.float32

    def step(state, drive_t):
        z = drive_t + jnp.matmul(state[0].astype(operand), recurrent.astype(operand),
                                 preferred_element_type=jnp.float32)
        if cell_name == "rnn":
            new = (jnp.tanh(z),)
        elif cell_name == "antisymmetric":
            new = (state[0] + CONSTANTS[cell_name][0] * jnp.tanh(z),)
        else:
            i, f, g, o = jnp.split(z, 4, axis=-1)
            c = jax.nn.sigmoid(f) * state[1] + jax.nn.sigmoid(i) * jnp.tanh(g)
            new = (jax.nn.sigmoid(o) * jnp.tanh(c), c)
        return new, new

    return jax.lax.scan(step, initial, drive)[1]


def member_inputs(cell_name: str, seed: int = 0) -> tuple:
    """(drive, recurrent, initial states, output weights), a leading axis of MEMBERS."""
    cell = CELLS[cell_name]
    keys = jax.random.split(jax.random.PRNGKey(seed), 4)
    drive = jax.random.normal(keys[0], (MEMBERS, STEPS, BATCH, cell.gates * UNITS))
    recurrent = jax.random.normal(keys[1], (MEMBERS, UNITS, cell.gates * UNITS)) / np.sqrt(UNITS)
    initial = tuple(0.5 * jax.random.normal(key, (MEMBERS, BATCH, UNITS)) for key in jax.random.split(keys[2],
                                                                                                       cell.states))
    weights = jax.random.normal(keys[3], (STEPS, BATCH, UNITS))
    return drive, recurrent, initial, weights


def group_results(recurrence, cell_name: str, precision: str) -> tuple:
    """For each member of a vmapped group: a loss of every state at every step, its gradients by
    drive, recurrent kernel and initial states, and the states (one compilation for all)."""
    drive, recurrent, initial, weights = member_inputs(cell_name)

    def loss(drive, recurrent, initial):
        states = recurrence(cell_name, drive, recurrent, initial, precision, CONSTANTS.get(cell_name, ()))
        return sum(jnp.sum(state * weights * (k + 1)) for k, state in enumerate(states)), states

    (value, states), grads = jax.jit(jax.vmap(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)))(
        drive, recurrent, initial)
    return value, states, grads


@pytest.mark.parametrize("cell_name, precision, tolerance",  # bf16 once: the cells share its casts
                         [("rnn", "float32", 2e-5), ("lstm", "float32", 2e-5), ("lstm", "bfloat16", 2e-2),
                          ("antisymmetric", "float32", 2e-5)])
def test_fused_states_and_gradients_are_the_scans_for_every_member(cell_name, precision, tolerance):
    fused_loss, fused_states, fused_grads = group_results(sequence, cell_name, precision)
    scan_loss, scan_states, scan_grads = group_results(scanned, cell_name, precision)
    assert [s.shape for s in fused_states] == [(MEMBERS, STEPS, BATCH, UNITS)] * CELLS[cell_name].states
    for fused_state, scan_state in zip(fused_states, scan_states):
        np.testing.assert_allclose(fused_state, scan_state, atol=tolerance)
    np.testing.assert_allclose(fused_loss, scan_loss, rtol=tolerance)
    for fused_grad, scan_grad in zip(jax.tree.leaves(fused_grads), jax.tree.leaves(scan_grads)):
        scale = float(jnp.abs(scan_grad).max())
        assert scale > 0  # every gradient carries something
        np.testing.assert_allclose(fused_grad, scan_grad, atol=tolerance * max(scale, 1.0))


@pytest.mark.parametrize("cell_name, units", [("rnn", 128), ("lstm", 64), ("antisymmetric", 128)])
def test_kernels_lower_to_triton_for_a_gpu_at_the_benchmarks_shape(cell_name, units, monkeypatch):
    """Triton's rules (power-of-two blocks, 2-D products) checked here without a GPU: the vmapped
    forward and backward kernels at 784 steps, batch 128, and the largest hidden size that
    ``fused_kernel_fits``, lower to Triton calls. Not a compilation to the GPU, which only a GPU session shows."""
    from simulators.architectures import fused

    monkeypatch.setattr(fused, "_interpret", lambda: False)
    cell = CELLS[cell_name]
    steps, batch, members = 784, 128, 4
    drive = jax.ShapeDtypeStruct((members, steps, batch, cell.gates * units), jnp.float32)
    recurrent = jax.ShapeDtypeStruct((members, units, cell.gates * units), jnp.float32)
    initial = tuple(jax.ShapeDtypeStruct((members, batch, units), jnp.float32) for _ in range(cell.states))

    def loss(drive, recurrent, initial):
        states = sequence(cell_name, drive, recurrent, initial, "bfloat16", CONSTANTS.get(cell_name, ()))
        return sum(jnp.sum(state) for state in states)

    group = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1, 2))))
    lowered = group.trace(drive, recurrent, initial).lower(lowering_platforms=("cuda",)).as_text()
    assert lowered.count("__gpu$xla.gpu.triton") == 2  # the forward and the backward kernel


def test_the_fused_architectures_are_the_layers_with_a_fused_cell():
    layers = {name: recurrent_layer_factory(name).func for name in ARCHITECTURE_NAMES}
    assert {name for name, layer in layers.items() if getattr(layer, "fused_cell", None)} == set(FUSED_ARCHITECTURES)
    assert {layers[name].fused_cell for name in FUSED_ARCHITECTURES} <= set(CELLS)
