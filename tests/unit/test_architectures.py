"""The math of the study's architectures, and the adjoint norms measured through them."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import scipy.linalg
from keras import ops

from simulators.adjoint import _perturbed_output, _state_width, adjoint_norms
from simulators.architectures import ARCHITECTURE_NAMES, architecture_options
from simulators.architectures.compute import FUSED_ARCHITECTURES, Compute, fused_kernel_fits
from simulators.architectures.dynamical import (
    AntisymmetricRNN,
    lipschitz_composition,
    matrix_exponential,
    orthogonal_polish,
)
from simulators.architectures.options import AntisymmetricOptions, ExponentialOptions, UnicornnOptions
from simulators.engines import Plan
from simulators.models import build_model, loss_and_metrics, update_rules
from simulators.tasks.base import TaskData
from tests.helpers.update_rule_check import LEARNING_RATE, gradients, rule_errors, steps

RNG = np.random.default_rng(0)


def numpy_of(tensor) -> np.ndarray:
    return ops.convert_to_numpy(tensor)


def small_task(samples=16, steps=12, features=3, classes=4) -> TaskData:
    x = RNG.normal(size=(samples, steps, features)).astype("float32")
    y = RNG.integers(0, classes, size=samples).astype("int32")
    return TaskData(x, y, x, y, objective="classification", n_classes=classes)


def test_antisymmetric_matrix_is_skew_minus_diffusion():
    layer = AntisymmetricRNN(6, seed=1, options=AntisymmetricOptions(gamma=0.3))
    layer.build((None, 5, 2))
    matrix = numpy_of(layer.constants())  # transposed for h @ matrix: (W - W^T - gamma I)^T
    w = numpy_of(layer.recurrent)
    np.testing.assert_allclose(matrix, (w - w.T - 0.3 * np.eye(6)).T, atol=1e-6)
    np.testing.assert_allclose(matrix + matrix.T, -2 * 0.3 * np.eye(6), atol=1e-6)
    assert np.abs(matrix).max() > 0  # not trivially zero: W - W^T carries the weights


def test_lipschitz_composition_mixes_symmetric_and_skew_parts():
    m = RNG.normal(size=(5, 5)).astype("float32")
    beta, gamma = 0.75, 0.1
    composed = numpy_of(lipschitz_composition(ops.convert_to_tensor(m), beta, gamma))
    np.testing.assert_allclose(composed, (1 - beta) * (m + m.T) + beta * (m - m.T) - gamma * np.eye(5), atol=1e-5)
    symmetric = (composed + composed.T) / 2
    np.testing.assert_allclose(symmetric, (1 - beta) * (m + m.T) - gamma * np.eye(5), atol=1e-5)


@pytest.mark.parametrize("scale", [0.1, 3.0, 30.0])
def test_matrix_exponential_matches_scipy(scale):
    """The backend's own expm: float32 rounding, not the 7e-6 of a hand-written Taylor series."""
    a = RNG.normal(size=(32, 32)) * scale / 32
    skew = (a - a.T).astype("float32")
    ours = numpy_of(matrix_exponential(ops.convert_to_tensor(skew))).astype("float64")
    np.testing.assert_allclose(ours, scipy.linalg.expm(skew.astype("float64")), atol=1e-6 * max(1.0, scale))


@pytest.mark.parametrize("units", [32, 128])
def test_polished_matrix_exponential_is_orthogonal_to_float32_rounding(units):
    a = RNG.normal(size=(units, units))
    skew = (a - a.T).astype("float32")  # norm ~ units: far past where training takes A
    b = numpy_of(orthogonal_polish(matrix_exponential(ops.convert_to_tensor(skew)))).astype("float64")
    np.testing.assert_allclose(b.T @ b, np.eye(units), atol=1e-6)
    np.testing.assert_allclose(b, scipy.linalg.expm(skew.astype("float64")), atol=1e-5)


@pytest.mark.parametrize("options", [ExponentialOptions(), ExponentialOptions(skew_optimizer="adam")],
                         ids=["study-sgd", "paper-adam"])
def test_exponential_rnn_stays_orthogonal_through_training(options):
    data = small_task()
    model = build_model("exponential", 32, 3, data, options)
    layer = model.get_layer("recurrent")
    before = numpy_of(layer.log_recurrent).copy()
    loss, metrics = loss_and_metrics(data)
    model.compile(optimizer=Plan(1, 4, 0.05, 0).optimizer(16, update_rules(model)), loss=loss, metrics=metrics)
    model.fit(data.x_train, data.y_train, batch_size=4, epochs=3, verbose=0)
    a = numpy_of(layer.log_recurrent)
    assert np.abs(a - before).max() > 1e-4  # it did move ...
    np.testing.assert_allclose(a, -a.T, atol=1e-6)  # ... and stayed skew
    b = numpy_of(layer.orthogonal_matrix()).astype("float64")
    np.testing.assert_allclose(b.T @ b, np.eye(32), atol=1e-6)


def test_exponential_rnn_skew_step_is_the_studys_sgd_rule():
    """One fit step: A moves by the reference code's update, A + 0.1 lr B dexp_{A^T}(E) with
    E = (G^T B - B^T G) / 2 and G = dL/dB, written with scipy's expm_frechet; every other weight
    takes Adam's first step, lr against the sign of its gradient."""
    import tensorflow as tf

    data = small_task()
    model = build_model("exponential", 8, 3, data)
    layer = model.get_layer("recurrent")
    a = numpy_of(layer.log_recurrent).astype("float64")
    b = tf.Variable(layer.orthogonal_matrix())
    layer.orthogonal_matrix = lambda: b  # G = dL/dB with B a free variable, as the reference's B is
    with tf.GradientTape() as tape:
        value = loss_and_metrics(data)[0](data.y_train, model(data.x_train, training=True))
    g, b = tape.gradient(value, b).numpy().astype("float64"), b.numpy().astype("float64")
    del layer.orthogonal_matrix
    reference = a + 0.1 * LEARNING_RATE * b @ scipy.linalg.expm_frechet(a.T, (g.T @ b - b.T @ g) / 2,
                                                                          compute_expm=False)

    def one_fit_step():
        plan = Plan(epochs=1, batch_size=16, learning_rate=LEARNING_RATE, seed=0)
        model.compile(optimizer=plan.optimizer(16, update_rules(model)), loss=loss_and_metrics(data)[0])
        model.train_on_batch(data.x_train, data.y_train)

    grads = gradients(model, data)
    (moved,) = steps([model], one_fit_step)
    np.testing.assert_allclose(a + moved[layer.log_recurrent.path], reference, atol=2e-7)
    errors = rule_errors(moved, grads)
    assert errors["skew"] < 1e-4 and errors["adam"] < 1e-3, errors


@pytest.mark.parametrize("init, low, high", [("cayley", -1.0, 0.0), ("henaff", -np.pi, np.pi)])
def test_exponential_rnn_starts_from_expRNN_block_rotations(init, low, high):
    """As expRNN's reference code: B = expm(A) is block-diagonal, rotations by s with s = -tan(t/2),
    t ~ U(0, pi/2) (cayley) or s ~ U(-pi, pi) (henaff); an odd last unit is left alone."""
    data = small_task()
    layer = build_model("exponential", 9, 4, data, ExponentialOptions(init=init)).get_layer("recurrent")
    b = numpy_of(layer.orthogonal_matrix())
    angles = numpy_of(layer.log_recurrent)[[0, 2, 4, 6], [1, 3, 5, 7]]
    assert ((low <= angles) & (angles <= high)).all() and np.ptp(angles) > 0.1
    rotations = np.zeros((9, 9))
    for block, angle in enumerate(angles):
        rotations[2 * block:2 * block + 2, 2 * block:2 * block + 2] = [[np.cos(angle), np.sin(angle)],
                                                                         [-np.sin(angle), np.cos(angle)]]
    rotations[8, 8] = 1
    np.testing.assert_allclose(b, rotations, atol=1e-5)


def test_the_studys_setup_is_the_default():
    assert architecture_options("antisymmetric").model_dump() == {
        "eps": 0.01, "gamma": 0.01, "sigma": 0.01, "recurrent_std": "sigma_over_units",
        "input_init": "normal_inverse_width", "initial_state": "trainable"}
    lipschitz = architecture_options("lipschitz").model_dump()
    assert lipschitz.pop("sigma") == pytest.approx(0.1 / 128)
    assert lipschitz == {"beta": 0.75, "gamma_A": 0.001, "gamma_W": 0.001, "eps": 0.03, "tied_init": True,
                         "input_init": "glorot_uniform", "initial_state": "trainable"}
    assert architecture_options("exponential").model_dump() == {
        "init": "cayley", "skew_optimizer": "sgd", "skew_learning_rate_scale": 0.1,
        "input_init": "normal_inverse_width", "initial_state": "trainable"}
    assert architecture_options("unicornn").model_dump() == {
        "eps": 0.03, "alpha": 0.9, "layers": 2, "readout": "all_states", "tied_init": True, "input_init": "he_uniform"}


@pytest.mark.parametrize("readout, width", [("all_states", 4 * 6), ("top", 6)])
def test_unicornn_readout_width(readout, width):
    model = build_model("unicornn", 6, 0, small_task(), UnicornnOptions(readout=readout))
    assert model.get_layer("readout").kernel.shape == (width, 4)


@pytest.mark.parametrize("architecture", ARCHITECTURE_NAMES)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_a_layer_says_its_output_shape_as_its_call_computes_it(architecture, return_sequences):
    """Models are built from ``compute_output_shape`` (no traced time loop): it must be the call's."""
    from simulators.architectures import recurrent_layer_factory

    layer = recurrent_layer_factory(architecture)(6, 0, architecture_options(architecture),
                                                  return_sequences=return_sequences)
    x = small_task(samples=3).x_train
    assert tuple(layer(x).shape) == layer.compute_output_shape(x.shape)


def test_unicornn_reads_out_every_layers_y_and_z_as_the_study_concatenated_them():
    """[y1, z1, y2, z2] of the last step, the second layer stepping on the first one's y_t."""
    options = UnicornnOptions(eps=0.1)
    model = build_model("unicornn", 4, 2, small_task(steps=6, features=2), options)
    block = model.get_layer("recurrent")
    x = RNG.normal(size=(3, 6, 2)).astype("float32")
    weights = [{name: numpy_of(getattr(layer, name)) for name in ("kernel", "bias", "w", "c")} for layer in block.stack]
    states = [(np.zeros((3, 4)), np.zeros((3, 4))) for _ in weights]
    for t in range(6):
        inputs = x[:, t]
        for depth, layer in enumerate(weights):
            y, z = states[depth]
            dt = options.eps / (1 + np.exp(-layer["c"]))
            z = z - dt * (np.tanh(layer["w"] * y + inputs @ layer["kernel"] + layer["bias"]) + options.alpha * y)
            y = y + dt * z
            states[depth], inputs = (y, z), y
    np.testing.assert_allclose(numpy_of(block(x)), np.concatenate([s for pair in states for s in pair], 1), atol=1e-5)


def test_initial_distributions_are_the_studys():
    wide = small_task(features=4)
    antisymmetric = build_model("antisymmetric", 200, 0, wide).get_layer("recurrent")
    assert numpy_of(antisymmetric.kernel).std() == pytest.approx(1 / 4, rel=0.05)  # N(0, (1/d)^2)
    assert numpy_of(antisymmetric.recurrent).std() == pytest.approx(0.01 / 200, rel=0.05)  # sigma / n
    paper = build_model("antisymmetric", 200, 0, wide, AntisymmetricOptions(recurrent_std="sigma_over_sqrt_units"))
    assert numpy_of(paper.get_layer("recurrent").recurrent).std() == pytest.approx(0.01 / 200**0.5, rel=0.05)
    exponential = build_model("exponential", 200, 0, small_task(features=1)).get_layer("recurrent")
    assert numpy_of(exponential.kernel).std() == pytest.approx(1.0, rel=0.1)  # N(0, 1/d^2), d = 1
    lipschitz = build_model("lipschitz", 50, 0, wide).get_layer("recurrent")
    np.testing.assert_array_equal(numpy_of(lipschitz.m_a), numpy_of(lipschitz.m_w))  # M_A = M_W
    assert numpy_of(lipschitz.m_a).std() == pytest.approx(0.1 / 128, rel=0.05)
    unicornn = build_model("unicornn", 200, 0, wide).get_layer("recurrent")
    first, second = unicornn.stack
    np.testing.assert_array_equal(numpy_of(first.w), numpy_of(second.w))
    np.testing.assert_array_equal(numpy_of(first.c), numpy_of(second.c))
    assert np.abs(numpy_of(first.kernel)).max() <= (6 / 4) ** 0.5  # He uniform: limit sqrt(6 / fan_in)
    assert np.abs(numpy_of(second.kernel)).max() == pytest.approx((6 / 200) ** 0.5, rel=0.02)
    untied = build_model("unicornn", 20, 0, wide, UnicornnOptions(tied_init=False)).get_layer("recurrent")
    assert not np.array_equal(numpy_of(untied.stack[0].w), numpy_of(untied.stack[1].w))


@pytest.mark.parametrize("architecture", ["antisymmetric", "lipschitz", "exponential"])
def test_initial_state_is_learned_from_zero(architecture):
    data = small_task()
    model = build_model(architecture, 6, 0, data)
    layer = model.get_layer("recurrent")
    np.testing.assert_array_equal(numpy_of(layer.initial_state), np.zeros(6))
    assert any(v is layer.initial_state for v in model.trainable_variables)
    loss, _ = loss_and_metrics(data)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss)
    model.train_on_batch(data.x_train, data.y_train)
    assert np.abs(numpy_of(layer.initial_state)).max() > 0  # the loss reaches h_0: it trains
    fixed = build_model(architecture, 6, 0, data, type(layer.options)(initial_state="zeros"))
    assert fixed.get_layer("recurrent").initial_state is None


def test_initial_adjoint_of_an_orthogonal_linear_recurrence_keeps_the_terminal_norm():
    """With a zero modReLU bias expRNN is linear, h_t = B h_{t-1} + U x_t, so dL/dh_1 =
    (B^T)^(T-1) dL/dh_T: B orthogonal, every sample's initial adjoint has its terminal norm."""
    data = small_task()
    model = build_model("exponential", 6, 0, data, ExponentialOptions(init="henaff"))
    layer = model.get_layer("recurrent")
    layer.modrelu_bias.assign(np.zeros(6, "float32"))
    initial, terminal = adjoint_norms(model, loss_and_metrics(data)[0], data.x_train, data.y_train)
    assert terminal > 1e-3 and initial == pytest.approx(terminal, rel=1e-4)
    layer.modrelu_bias.assign(np.full(6, -0.5, "float32"))  # a real modReLU forgets: the norm falls
    initial, terminal = adjoint_norms(model, loss_and_metrics(data)[0], data.x_train, data.y_train)
    assert initial < 0.9 * terminal


@pytest.mark.parametrize("per_step", [False, True], ids=["last-state", "per-step"])
@pytest.mark.parametrize("architecture", [*ARCHITECTURE_NAMES, "unicornn-top"])
def test_terminal_adjoint_matches_the_readout_gradient(architecture, per_step):
    """dL/dh_T through the perturbation equals the closed form W_out (softmax - onehot) of the
    last output (divided by the steps when every step is labelled, as the loss averages them),
    and the perturbed forward pass (a Keras layer's own cell in a scan) reproduces the model."""
    data = small_task()
    if per_step:
        labels = RNG.integers(0, 4, size=(16, 12)).astype("int32")
        data = TaskData(data.x_train, labels, data.x_val, labels, objective="classification", n_classes=4,
                        per_step=True)
    options = UnicornnOptions(readout="top") if architecture == "unicornn-top" else None
    model = build_model(architecture.removesuffix("-top"), 6, 0, data, options)
    x, y = data.x_train, data.y_train
    zeros = np.zeros((16, 12, _state_width(model)), "float32")
    np.testing.assert_allclose(numpy_of(_perturbed_output(model, x, zeros)), numpy_of(model(x)), atol=1e-5)
    initial, terminal = adjoint_norms(model, loss_and_metrics(data)[0], x, y)
    logits = numpy_of(model(x))
    assert logits.shape == ((16, 12, 4) if per_step else (16, 4))
    logits, y = (logits[:, -1], y[:, -1]) if per_step else (logits, y)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(16), y] -= 1
    readout = numpy_of(model.get_layer("readout").kernel)
    expected = np.linalg.norm(p @ readout.T, axis=1).mean() / (12 if per_step else 1)
    assert terminal == pytest.approx(expected, rel=1e-4)
    assert np.isfinite(initial) and initial >= 0


@pytest.mark.parametrize("architecture, keras_layer", [("rnn", keras.layers.SimpleRNN), ("lstm", keras.layers.LSTM),
                                                       ("gru", keras.layers.GRU)])
def test_classic_architectures_are_keras_own_cells(architecture, keras_layer):
    """Same weights (shapes, order, initial values) and same states as Keras' layer, as the study used it."""
    x = RNG.normal(size=(4, 7, 3)).astype("float32")
    ours = build_model(architecture, 5, 3, small_task(steps=7, features=3)).get_layer("recurrent")
    theirs = keras_layer(5, kernel_initializer=keras.initializers.GlorotUniform(3),
                         recurrent_initializer=keras.initializers.Orthogonal(seed=3))
    theirs.build(x.shape)
    for mine, reference in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, reference)
    np.testing.assert_allclose(numpy_of(ours(x)), numpy_of(theirs(x)), atol=1e-6)


@pytest.mark.parametrize("architecture", ARCHITECTURE_NAMES)
def test_compute_options_change_how_not_what(architecture):
    """Unrolling computes the same function; bfloat16 products the same to bf16 rounding."""
    data = small_task()
    plain = build_model(architecture, 6, 0, data)
    expected = numpy_of(plain(data.x_train))
    for compute, tolerance in ((Compute(unroll=4), 1e-5), (Compute(precision="bfloat16"), 3e-2)):
        other = build_model(architecture, 6, 0, data, compute=compute)
        other.set_weights(plain.get_weights())
        computed = numpy_of(other(data.x_train))
        np.testing.assert_allclose(computed, expected, atol=tolerance, rtol=tolerance)
        if compute.precision == "bfloat16":
            assert np.abs(computed - expected).max() > 1e-6  # the products really are bf16


@pytest.mark.parametrize("architecture", FUSED_ARCHITECTURES)
def test_kernel_fused_runs_the_scan_off_jax(architecture):
    """Pallas runs on JAX only: on another backend a layer asked for the fused kernel runs the scan
    (the same function; on JAX the fused kernel's parity is tests/unit/test_fused.py's)."""
    data = small_task()
    plain = build_model(architecture, 6, 0, data)
    fused = build_model(architecture, 6, 0, data, compute=Compute(kernel="fused"))
    fused.set_weights(plain.get_weights())
    assert fused.get_layer("recurrent").uses_fused_kernel() == (keras.backend.backend() == "jax")
    np.testing.assert_allclose(numpy_of(fused(data.x_train)), numpy_of(plain(data.x_train)), atol=1e-5)


@pytest.mark.parametrize("cell_name, units, precision, compiled", [
    ("rnn", 128, "float32", True), ("rnn", 256, "bfloat16", True),  # compiled and trained on an H200
    ("lstm", 32, "float32", True),  # compiled and trained there (benchmarks/precision_parity.py)
    ("lstm", 128, "float32", False), ("lstm", 128, "bfloat16", False),  # out of shared memory there
    ("lstm", 64, "bfloat16", True), ("rnn", 256, "float32", False),  # not run: 64 and 256 KiB
    ("antisymmetric", 128, "float32", True), ("antisymmetric", 256, "bfloat16", False),  # ran at 128; 256 KiB: not
    ("lipschitz", 64, "float32", True), ("lipschitz", 128, "float32", False),  # not run: 2 blocks, 64 and 256 KiB
    ("lipschitz", 128, "bfloat16", True),  # compiled and trained on an H200
    ("exponential", 128, "bfloat16", True), ("exponential", 256, "bfloat16", False),  # ran at 128 (float32 products)
    ("gru", 32, "float32", False)])  # no fused cell
def test_the_fused_kernel_takes_the_shapes_that_compiled_on_a_gpu_and_refuses_those_that_ran_out(
        cell_name, units, precision, compiled):
    assert fused_kernel_fits(cell_name, units, precision) == compiled


@pytest.mark.parametrize("units, fused", [(32, True), (128, False)])
def test_an_lstm_too_large_for_a_gpu_programs_shared_memory_runs_the_scan(units, fused, monkeypatch):
    """The fused kernel's LSTM at hidden 128 did not compile on an H200 (out of shared memory):
    there the layer keeps the scan, at hidden 32 it takes the kernel (``fused_kernel_fits``)."""
    pytest.importorskip("jax")
    model = build_model("lstm", units, 0, small_task(), compute=Compute(kernel="fused"))
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    assert model.get_layer("recurrent").uses_fused_kernel() == fused
