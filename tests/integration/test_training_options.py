"""Training options: learning-rate schedules, determinism, TensorBoard logs, the JAX engine."""

from __future__ import annotations

import json

import numpy as np
import pytest

from generators.points import make_point
from hypers.fields import defaults
from simulators.options import TrainingOptions
from simulators.records import EPOCH_TIMES
from tests.helpers.training import train_point

TINY_DIGITS = {"digits": {"train_samples": 64}}


def train(sim_dir, **options):
    point = make_point({**defaults(), "architecture": "rnn", "dataset": "digits", "hidden_dim": 8, "epochs": 2},
                       replicate=0, spec_seed=3)
    return train_point(point, TrainingOptions(tasks=TINY_DIGITS, threads=1, **options), sim_dir)


def test_same_seed_same_numbers(tmp_path):
    first, second = train(tmp_path / "a"), train(tmp_path / "b")
    history = [json.loads((tmp_path / name / "history.json").read_text()) for name in "ab"]
    drop_seconds = [[{k: v for k, v in epoch.items() if k not in EPOCH_TIMES} for epoch in run] for run in history]
    assert drop_seconds[0] == drop_seconds[1]
    assert first["val_loss"] == second["val_loss"] and first["terminal_adjoint"] == second["terminal_adjoint"]


def test_tensorboard_logs_each_split(tmp_path):
    result = train(tmp_path / "sim", tensorboard=True, schedule="cosine")
    assert result["status"] == "ok", result["error"]
    for split in ("train", "validation"):
        assert list((tmp_path / "sim" / "tensorboard" / split).glob("events.out.tfevents.*"))


JAX_VS_FIT = """
import json, sys, tempfile
from pathlib import Path
from generators.points import make_point
from hypers.fields import defaults
from simulators.options import TrainingOptions
from simulators.run_dir import SimDir
from tests.helpers.training import train_point
out = {}
for engine in ("jax", "fit"):
    point = make_point({**defaults(), "architecture": "gru", "dataset": "digits", "hidden_dim": 16,
                        "learning_rate": 1e-2, "epochs": 3}, replicate=0, spec_seed=1)
    sim_dir = Path(tempfile.mkdtemp()) / "sim"
    options = TrainingOptions(engine=engine, tasks={"digits": {"train_samples": 400}})
    if engine == "jax":  # stop after 2 epochs, then resume from the checkpoint for the third
        train_point({**point, "epochs": 2}, options, sim_dir)
        SimDir(sim_dir).result.unlink()
    out[engine] = train_point(point, options, sim_dir)
    out[engine]["epochs"] = [e["epoch"] for e in json.loads(SimDir(sim_dir).history.read_text())]
print(json.dumps(out))
"""


def test_jax_engine_learns_like_fit_and_resumes(on_jax):
    pytest.importorskip("jax")
    out = on_jax(JAX_VS_FIT)
    for engine in ("jax", "fit"):
        assert out[engine]["status"] == "ok", out[engine]["error"]
        assert out[engine]["epochs"] == [1, 2, 3]
    # Different batch orders, same model and optimizer: both learn (chance is 0.1), about equally.
    accuracies = {engine: out[engine]["best_val_accuracy"] for engine in ("jax", "fit")}
    assert min(accuracies.values()) > 0.2 and abs(accuracies["jax"] - accuracies["fit"]) < 0.15, accuracies
    assert np.isfinite(out["jax"]["terminal_adjoint"])
