"""Vectorised trainings on the JAX engine: a member of a group computes what it would alone,
and a diverging member is recorded without disturbing the others."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_command

pytest.importorskip("jax")

GROUP_VS_ALONE = """
import json, tempfile
from pathlib import Path
from generators.points import make_point
from hypers.fields import DEFAULTS
from simulators.options import TrainingOptions
from simulators.training import run_training, run_training_group

options = TrainingOptions(engine="jax", tasks={"digits": {"train_samples": 200}})
points = [make_point({**DEFAULTS, "architecture": "gru", "dataset": "digits", "hidden_dim": 8, "epochs": 2,
                      "learning_rate": rate}, replicate=replicate, spec_seed=5)
          for rate, replicate in ((1e-2, 0), (1e-2, 1), (3e-3, 0), (1e38, 0))]  # the last overflows]
root = Path(tempfile.mkdtemp())
alone = [run_training(p, options, root / "alone" / p["identifier"]) for p in points[:3]]
together = run_training_group(points, options, [root / "group" / p["identifier"] for p in points])
curves = [json.loads((root / "group" / p["identifier"] / "history.json").read_text()) for p in points]
print(json.dumps({"alone": alone, "together": together, "curves": curves}))
"""


def test_group_members_match_training_alone_and_divergence_is_isolated():
    result = run_command(["python", "-c", GROUP_VS_ALONE], env={"KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    for alone, together in zip(out["alone"], out["together"][:3]):
        assert together["status"] == alone["status"] == "ok", together["error"]
        for name in ("loss", "val_loss", "val_accuracy", "terminal_adjoint"):
            assert together[name] == pytest.approx(alone[name], rel=1e-4, abs=1e-6), name
        assert together["epochs_completed"] == 2
    diverged = out["together"][3]
    assert diverged["status"] == "diverged" and diverged["epochs_completed"] == 1  # stopped, others went on
    assert len(out["curves"][3]) == 1 and all(len(curve) == 2 for curve in out["curves"][:3])
