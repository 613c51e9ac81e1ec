"""The math of the study's architectures, and the adjoint norms measured through them."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import scipy.linalg
from keras import ops

from simulators.adjoint import _perturbed_output, adjoint_norms
from simulators.architectures import ARCHITECTURE_NAMES, architecture_options
from simulators.architectures.dynamical import (
    AntisymmetricRNN,
    UnicornnLayer,
    lipschitz_composition,
    matrix_exponential,
)
from simulators.architectures.options import AntisymmetricOptions, ExponentialOptions, UnicornnOptions
from simulators.models import build_model, loss_and_metrics
from simulators.tasks.base import TaskData

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
    a = RNG.normal(size=(8, 8)) * scale / 8
    skew = (a - a.T).astype("float32")
    ours = numpy_of(matrix_exponential(ops.convert_to_tensor(skew)))
    np.testing.assert_allclose(ours, scipy.linalg.expm(skew.astype("float64")), atol=2e-4)


def test_exponential_rnn_stays_orthogonal_through_adam_steps():
    data = small_task()
    model = build_model("exponential", 8, 3, data, ExponentialOptions(init="cayley"))
    layer = model.get_layer("recurrent")
    before = numpy_of(layer.log_recurrent).copy()
    loss, metrics = loss_and_metrics(data)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss, metrics=metrics)
    model.fit(data.x_train, data.y_train, batch_size=4, epochs=3, verbose=0)
    assert np.abs(numpy_of(layer.log_recurrent) - before).max() > 1e-3  # it did move
    b = numpy_of(layer.orthogonal_matrix())
    np.testing.assert_allclose(b @ b.T, np.eye(8), atol=1e-4)


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


def test_unicornn_layer_matches_a_numpy_reference():
    options = UnicornnOptions(eps=0.1, alpha=0.9)
    layer = UnicornnLayer(4, seed=2, options=options, return_sequences=True)
    x = RNG.normal(size=(3, 6, 2)).astype("float32")
    out = numpy_of(layer(x))
    kernel, bias = numpy_of(layer.kernel), numpy_of(layer.bias)
    w, c = numpy_of(layer.w), numpy_of(layer.c)
    dt = options.eps / (1 + np.exp(-c))
    y = z = np.zeros((3, 4))
    for t in range(6):
        z = z - dt * (np.tanh(w * y + x[:, t] @ kernel + bias) + options.alpha * y)
        y = y + dt * z
        np.testing.assert_allclose(out[:, t], y, atol=1e-5)


def test_published_defaults_are_the_spec_defaults():
    assert architecture_options("antisymmetric").model_dump() == {"eps": 0.01, "gamma": 0.01, "sigma": 0.01}
    lipschitz = architecture_options("lipschitz")
    assert (lipschitz.beta, lipschitz.gamma_A, lipschitz.gamma_W, lipschitz.eps) == (0.75, 0.001, 0.001, 0.03)
    assert lipschitz.sigma == pytest.approx(0.1 / 128)
    assert architecture_options("unicornn").model_dump() == {"eps": 0.03, "alpha": 0.9, "layers": 2}
    assert architecture_options("exponential").init == "cayley"  # expRNN's for pixel-by-pixel MNIST


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
@pytest.mark.parametrize("architecture", ARCHITECTURE_NAMES)
def test_terminal_adjoint_matches_the_readout_gradient(architecture, per_step):
    """dL/dh_T through the perturbation equals the closed form W_out (softmax - onehot) of the
    last output (divided by the steps when every step is labelled, as the loss averages them),
    and the perturbed forward pass (a Keras layer's own cell in a scan) reproduces the model."""
    data = small_task()
    if per_step:
        labels = RNG.integers(0, 4, size=(16, 12)).astype("int32")
        data = TaskData(data.x_train, labels, data.x_val, labels, objective="classification", n_classes=4, per_step=True)
    model = build_model(architecture, 6, 0, data)
    x, y = data.x_train, data.y_train
    np.testing.assert_allclose(
        numpy_of(_perturbed_output(model, x, np.zeros((16, 12, 6), "float32"))), numpy_of(model(x)), atol=1e-5
    )
    initial, terminal = adjoint_norms(model, loss_and_metrics(data)[0], x, y)
    logits = numpy_of(model(x))
    assert logits.shape == ((16, 12, 4) if per_step else (16, 4))
    logits, y = (logits[:, -1], y[:, -1]) if per_step else (logits, y)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(16), y] -= 1
    expected = np.linalg.norm(p @ numpy_of(model.get_layer("readout").kernel).T, axis=1).mean() / (12 if per_step else 1)
    assert terminal == pytest.approx(expected, rel=1e-4)
    assert np.isfinite(initial) and initial >= 0
