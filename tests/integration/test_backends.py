"""The same model code trains on the JAX backend (CI installs JAX; the GPU machine has no TF).
The scripts run in the tests' warm JAX process (``on_jax``, tests/helpers/jax_scripts.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("jax")

TRAIN_EVERY_ARCHITECTURE = """
import json, sys, tempfile
from pathlib import Path
import keras
from generators.points import make_point
from hypers.fields import defaults
from simulators.architectures import ARCHITECTURE_NAMES
from simulators.options import TrainingOptions
from tests.helpers.training import train_point

options = TrainingOptions(tasks={"digits": {"train_samples": 64}})
results = {"backend": keras.backend.backend()}
for architecture in ARCHITECTURE_NAMES:
    point = make_point({**defaults(), "architecture": architecture, "dataset": "digits", "hidden_dim": 8,
                        "epochs": 1, "pad": 8, "orientation": "uniform"}, replicate=0, spec_seed=0)
    results[architecture] = train_point(point, options, Path(tempfile.mkdtemp()) / "sim")
print(json.dumps(results))
"""


def test_every_architecture_trains_on_jax(on_jax):
    results = on_jax(TRAIN_EVERY_ARCHITECTURE)
    assert results.pop("backend") == "jax"
    for architecture, record in results.items():
        assert record["status"] == "ok", (architecture, record["error"])
        assert record["val_loss"] < 10 and record["terminal_adjoint"] > 0, (architecture, record)


SKEW_RULE_ON_JAX = """
import json
from simulators.engines import Plan
from simulators.engines.jax_step import JaxEngine, train_group
from simulators.engines.member import Member
from simulators.models import build_model
from tests.helpers.update_rule_check import LEARNING_RATE, gradients, rule_errors, steps, tiny_classification

data = tiny_classification()
plan = Plan(epochs=1, batch_size=len(data.x_train), learning_rate=LEARNING_RATE, seed=0)  # one step, all samples
keep_going = lambda epoch, metrics: True
alone = build_model("exponential", 8, 3, data)
grads = gradients(alone, data)
(moved,) = steps([alone], lambda: JaxEngine().train(alone, data, plan, keep_going))
report = {"jax": rule_errors(moved, grads)}
group = [build_model("exponential", 8, seed, data) for seed in (4, 5)]
group_grads = [gradients(model, data) for model in group]
group_moved = steps(group, lambda: train_group([Member(model, plan, keep_going) for model in group], data))
report |= {f"group member {k}": rule_errors(*pair) for k, pair in enumerate(zip(group_moved, group_grads))}
print(json.dumps(report))
"""


def test_expRNN_skew_rule_holds_on_the_jax_engine_and_in_groups(on_jax):
    """A takes the study's SGD step at 0.1 lr, the rest Adam's, in the jitted step alone and vmapped."""
    for where, errors in on_jax(SKEW_RULE_ON_JAX).items():
        assert errors["skew_moved"] > 0 and errors["skew"] < 1e-3 and errors["adam"] < 1e-3, (where, errors)


REMAT_ON_JAX = """
import json
from simulators.architectures.compute import FUSED_ARCHITECTURES, Compute
from simulators.models import build_model
from tests.helpers.update_rule_check import loss_and_gradient_gaps, tiny_classification

data = tiny_classification()
report = {}
for architecture in ("lstm", "unicornn"):
    plain = build_model(architecture, 8, 0, data)
    remat = build_model(architecture, 8, 0, data, compute=Compute(remat=True, unroll=4))
    remat.set_weights(plain.get_weights())
    report[architecture] = loss_and_gradient_gaps(plain, remat, data)
print(json.dumps(report))
"""


def test_remat_and_unrolling_compute_the_same_loss_and_gradients_on_jax(on_jax):
    for architecture, (loss_gap, gradient_gap) in on_jax(REMAT_ON_JAX).items():
        assert loss_gap < 1e-6 and gradient_gap < 1e-5, architecture


FUSED_VS_SCAN_ON_JAX = """
import json, tempfile
from pathlib import Path
from generators.points import make_point
from hypers.fields import defaults
from simulators.architectures.compute import FUSED_ARCHITECTURES, Compute
from simulators.architectures.options import UnicornnOptions
from simulators.models import build_model
from simulators.options import TrainingOptions
from tests.helpers.training import train_point
from tests.helpers.update_rule_check import loss_and_gradient_gaps, tiny_classification

data = tiny_classification()
report = {}
for architecture in FUSED_ARCHITECTURES:
    scan = build_model(architecture, 12, 0, data)
    fused = build_model(architecture, 12, 0, data, compute=Compute(kernel="fused"))
    fused.set_weights(scan.get_weights())
    loss_gap, gradient_gap = loss_and_gradient_gaps(scan, fused, data)
    report[architecture] = {"uses_fused": fused.get_layer("recurrent").uses_fused_kernel(),
                            "loss_gap": loss_gap, "gradient_gap": gradient_gap}
# UnICORNN's other options, a step large enough that w's and c's gradients weigh (at eps 0.03 they are ~1e-5)
options = UnicornnOptions(eps=0.3, alpha=0.0, layers=3, readout="top", tied_init=False)
scan = build_model("unicornn", 12, 0, data, options)
fused = build_model("unicornn", 12, 0, data, options, compute=Compute(kernel="fused"))
fused.set_weights(scan.get_weights())
loss_gap, gradient_gap = loss_and_gradient_gaps(scan, fused, data)
report["unicornn, other options"] = {"uses_fused": fused.get_layer("recurrent").uses_fused_kernel(),
                                     "loss_gap": loss_gap, "gradient_gap": gradient_gap}
point = make_point({**defaults(), "architecture": "lstm", "dataset": "digits", "hidden_dim": 16, "epochs": 1,
                    "batch_size": 32}, replicate=0, spec_seed=0)
report["trained"] = {kernel: train_point(point, TrainingOptions(engine="jax", kernel=kernel,
                                                                tasks={"digits": {"train_samples": 128}}),
                                         Path(tempfile.mkdtemp()) / "sim")
                     for kernel in ("scan", "fused")}
print(json.dumps(report))
"""


def test_the_fused_kernel_computes_and_trains_as_the_scan_on_jax(on_jax):
    """Every fused architecture: the same loss and gradients from the same weights (unicornn at its defaults and
    at its other options, each layer a kernel). lstm: an epoch of digits on
    the JAX engine (its adjoint probes through the scan) ends where the scan's does, seed for seed."""
    report = on_jax(FUSED_VS_SCAN_ON_JAX)
    scan, fused = report.pop("trained").values()
    for architecture, found in report.items():
        assert found["uses_fused"] and found["loss_gap"] < 1e-6 and found["gradient_gap"] < 1e-5, architecture
    assert scan["status"] == fused["status"] == "ok", (scan["error"], fused["error"])
    for metric in ("loss", "val_loss", "val_accuracy", "terminal_adjoint"):
        assert fused[metric] == pytest.approx(scan[metric], rel=1e-3, abs=1e-6), metric
