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
# eps, larger than the study's (0.01, 0.03) so the tanh path weighs
CONSTANTS = {"antisymmetric": (0.3,), "lipschitz": (0.3,), "unicornn": (0.9,)}  # unicornn: alpha
# learned vectors' ranges: the expRNN's modReLU bias in [-0.5, 0.5] (where negative it zeroes some
# units); UnICORNN's w as initialised and dt = eps sigmoid(c) with eps larger than the study's 0.03
PARAMETER_RANGES = {"unicornn": ((0.0, 1.0), (0.1, 0.5))}


def scanned(cell_name: str, drive, recurrent, initial, precision: str, constants: tuple = (),
            parameters: tuple = ()) -> tuple:
    """The scan path's recurrence (classic.py's and dynamical.py's steps, ScanRecurrence.matmul's
    precision; the expRNN's products float32) in JAX. lipschitz: recurrent is [W^T | A^T]."""
    operand = jnp.bfloat16 if precision == "bfloat16" and cell_name != "exponential" else jnp.float32

    def step(state, drive_t):
        if cell_name == "unicornn":  # UnicornnLayer.step: no products
            (alpha,), (w, dt), (y, z) = constants, parameters, state
            z = z - dt * (jnp.tanh(w * y + drive_t) + alpha * y)
            return (y + dt * z, z), (y + dt * z, z)
        products = jnp.matmul(state[0].astype(operand), recurrent.astype(operand), preferred_element_type=jnp.float32)
        z = drive_t + products if cell_name != "lipschitz" else None
        if cell_name == "lipschitz":
            w, a = jnp.split(products, 2, axis=-1)
            new = (state[0] + constants[0] * (a + jnp.tanh(w + drive_t)),)
        elif cell_name == "rnn":
            new = (jnp.tanh(z),)
        elif cell_name == "antisymmetric":
            new = (state[0] + constants[0] * jnp.tanh(z),)
        elif cell_name == "exponential":
            new = (jnp.sign(z) * jax.nn.relu(jnp.abs(z) + parameters[0]),)
        else:
            i, f, g, o = jnp.split(z, 4, axis=-1)
            c = jax.nn.sigmoid(f) * state[1] + jax.nn.sigmoid(i) * jnp.tanh(g)
            new = (jax.nn.sigmoid(o) * jnp.tanh(c), c)
        return new, new

    return jax.lax.scan(step, initial, drive)[1]


def member_inputs(cell_name: str, seed: int = 0) -> tuple:
    """(drive, recurrent, initial states, learned vectors (``PARAMETER_RANGES``), output weights),
    a leading axis of MEMBERS."""
    cell = CELLS[cell_name]
    keys = jax.random.split(jax.random.PRNGKey(seed), 5)
    drive = jax.random.normal(keys[0], (MEMBERS, STEPS, BATCH, cell.driven * UNITS))
    recurrent = jax.random.normal(keys[1], (MEMBERS, UNITS, cell.gates * UNITS)) / np.sqrt(UNITS)
    initial = tuple(0.5 * jax.random.normal(key, (MEMBERS, BATCH, UNITS)) for key in jax.random.split(keys[2],
                                                                                                       cell.states))
    ranges = PARAMETER_RANGES.get(cell_name, ((-0.5, 0.5),) * cell.parameter_count)
    parameters = tuple(jax.random.uniform(key, (MEMBERS, UNITS), minval=low, maxval=high)
                       for key, (low, high) in zip(jax.random.split(keys[4], cell.parameter_count), ranges))
    weights = jax.random.normal(keys[3], (STEPS, BATCH, UNITS))
    return drive, recurrent, initial, parameters, weights


def group_results(recurrence, cell_name: str, precision: str) -> tuple:
    """For each member of a vmapped group: a loss of every state at every step, its gradients by
    drive, recurrent kernel, initial states and learned vectors, and the states (one compilation
    for all)."""
    drive, recurrent, initial, parameters, weights = member_inputs(cell_name)

    def loss(drive, recurrent, initial, parameters):
        states = recurrence(cell_name, drive, recurrent, initial, precision, CONSTANTS.get(cell_name, ()), parameters)
        return sum(jnp.sum(state * weights * (k + 1)) for k, state in enumerate(states)), states

    (value, states), grads = jax.jit(jax.vmap(jax.value_and_grad(loss, argnums=(0, 1, 2, 3), has_aux=True)))(
        drive, recurrent, initial, parameters)
    return value, states, grads


@pytest.mark.parametrize("cell_name, precision, tolerance",  # bf16 where a cell's products differ
                         [("rnn", "float32", 2e-5), ("lstm", "float32", 2e-5), ("lstm", "bfloat16", 2e-2),
                          ("antisymmetric", "float32", 2e-5), ("lipschitz", "float32", 2e-5),
                          ("lipschitz", "bfloat16", 2e-2), ("exponential", "float32", 2e-5),
                          ("exponential", "bfloat16", 2e-5),  # the expRNN's products stay float32
                          ("unicornn", "float32", 2e-5)])  # no products: precision changes nothing
def test_fused_states_and_gradients_are_the_scans_for_every_member(cell_name, precision, tolerance):
    fused_loss, fused_states, fused_grads = group_results(sequence, cell_name, precision)
    scan_loss, scan_states, scan_grads = group_results(scanned, cell_name, precision)
    assert [s.shape for s in fused_states] == [(MEMBERS, STEPS, BATCH, UNITS)] * CELLS[cell_name].states
    for fused_state, scan_state in zip(fused_states, scan_states):
        np.testing.assert_allclose(fused_state, scan_state, atol=tolerance)
    np.testing.assert_allclose(fused_loss, scan_loss, rtol=tolerance)
    for fused_grad, scan_grad in zip(jax.tree.leaves(fused_grads), jax.tree.leaves(scan_grads)):
        assert fused_grad.shape == scan_grad.shape
        if scan_grad.size == 0:  # a cell without recurrent blocks: an empty recurrent kernel
            continue
        scale = float(jnp.abs(scan_grad).max())
        assert scale > 0  # every gradient carries something
        np.testing.assert_allclose(fused_grad, scan_grad, atol=tolerance * max(scale, 1.0))


@pytest.mark.parametrize("cell_name, units", [("rnn", 128), ("lstm", 64), ("antisymmetric", 128), ("lipschitz", 128),
                                              ("exponential", 128), ("unicornn", 128)])
def test_kernels_lower_to_triton_for_a_gpu_at_the_benchmarks_shape(cell_name, units, monkeypatch):
    """Triton's rules (power-of-two blocks, 2-D products) checked here without a GPU: the vmapped
    forward and backward kernels at 784 steps, batch 128, and the largest hidden size that
    ``fused_kernel_fits``, lower to Triton calls. Not a compilation to the GPU, which only a GPU session shows."""
    from simulators.architectures import fused

    monkeypatch.setattr(fused, "_interpret", lambda: False)
    cell = CELLS[cell_name]
    steps, batch, members = 784, 128, 4
    drive = jax.ShapeDtypeStruct((members, steps, batch, cell.driven * units), jnp.float32)
    recurrent = jax.ShapeDtypeStruct((members, units, cell.gates * units), jnp.float32)
    initial = tuple(jax.ShapeDtypeStruct((members, batch, units), jnp.float32) for _ in range(cell.states))
    parameters = tuple(jax.ShapeDtypeStruct((members, units), jnp.float32) for _ in range(cell.parameter_count))

    def loss(drive, recurrent, initial, parameters):
        states = sequence(cell_name, drive, recurrent, initial, "bfloat16", CONSTANTS.get(cell_name, ()), parameters)
        return sum(jnp.sum(state) for state in states)

    group = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1, 2, 3))))
    lowered = group.trace(drive, recurrent, initial, parameters).lower(lowering_platforms=("cuda",)).as_text()
    assert lowered.count("__gpu$xla.gpu.triton") == 2  # the forward and the backward kernel


def test_the_fused_architectures_are_the_layers_with_a_fused_cell():
    layers = {name: recurrent_layer_factory(name).func for name in ARCHITECTURE_NAMES}
    assert {name for name, layer in layers.items() if getattr(layer, "fused_cell", None)} == set(FUSED_ARCHITECTURES)
    assert {layers[name].fused_cell for name in FUSED_ARCHITECTURES} <= set(CELLS)


def test_a_cell_without_recurrent_blocks_fits_at_any_size():
    """UnICORNN's recurrence is elementwise: nothing for a GPU program to hold, so no size takes the scan."""
    from simulators.architectures.compute import fused_kernel_fits, fused_limits

    assert CELLS["unicornn"].gates == 0 and CELLS["unicornn"].width == 1
    assert all(fused_kernel_fits("unicornn", units, precision) for units in (1, 12, 128, 1024, 4096)
               for precision in ("float32", "bfloat16"))
    assert "unicornn at any hidden size" in fused_limits()
