"""The same model code trains on the JAX backend (CI installs JAX; the GPU machine has no TF)."""

from __future__ import annotations

import json

import pytest

from tests.helpers.runs import run_command

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


def test_every_architecture_trains_on_jax():
    result = run_command(["python", "-c", TRAIN_EVERY_ARCHITECTURE], env={"KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(result.stdout.strip().splitlines()[-1])
    assert results.pop("backend") == "jax"
    for architecture, record in results.items():
        assert record["status"] == "ok", (architecture, record["error"])
        assert record["val_loss"] < 10 and record["terminal_adjoint"] > 0, (architecture, record)
