"""Compositional studies end to end: a training validated on a held-out composition records it and
is its seen twin's training; hypers/compositional.yaml runs on digits and its report has a table
per composition; two_moons learns."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from generators.points import make_point
from hypers.space import SearchSpace
from simulators.options import TrainingOptions
from simulators.records import read_json
from tests.helpers.runs import run_command
from tests.helpers.training import train_point

FAST = {"adjoints": False, "threads": 1, "tasks": {"digits": {"train_samples": 384}}}


def test_a_training_validated_on_a_held_out_composition_records_it(tmp_path):
    options = TrainingOptions(task_cache=tmp_path / "cache", **FAST)
    seen = SearchSpace.complete({"architecture": "rnn", "dataset": "digits", "corruption": "rotate+translate",
                                 "hidden_dim": 8, "epochs": 2, "batch_size": 64})
    results = {}
    for validation in ("rotate+translate", "translate+rotate"):
        point = make_point({**seen, "val_corruption": validation}, 0, 0)
        results[validation] = train_point(point, options, tmp_path / validation)
        recorded = read_json(tmp_path / validation / "point.json")
        assert (recorded["corruption"], recorded["val_corruption"]) == ("rotate+translate", validation)
        result = read_json(tmp_path / validation / "result.json")
        assert (result["corruption"], result["val_corruption"]) == ("rotate+translate", validation)
        assert result["status"] == "ok"
    seen_result, held_out_result = results["rotate+translate"], results["translate+rotate"]
    # one network (same seed, same batches) validated on two compositions
    assert held_out_result["loss"] == seen_result["loss"]
    assert held_out_result["val_loss"] != seen_result["val_loss"]


def test_the_compositional_study_runs_on_digits_with_a_table_per_composition(tmp_path):
    run_dir = tmp_path / "run"
    shrink = ["space.choices.architecture=[rnn]", "space.choices.hidden_dim=[8]", "space.choices.learning_rate=[0.01]",
              "space.choices.val_corruption=[rotate, translate+rotate]", "space.replicates=1",
              "simulator.epochs=1", "simulator.isolation=inline", "simulator.adjoints=false", "simulator.threads=1",
              f"simulator.task_cache={tmp_path / 'cache'}", "simulator.tasks={digits: {train_samples: 384}}"]
    ran = run_command(["python", "run_ensemble.py", "--spec", "ensembles/compositional_digits.yaml", "--out",
                       str(run_dir), "--nworkers", "2", *[f"--set={item}" for item in shrink]], timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    H = np.load(run_dir / "history.npy")
    assert len(H) == 6 and set(H["status"]) == {"ok"}  # 3 training compositions x 2 validations
    assert set(zip(H["corruption"], H["val_corruption"])) == {
        (corruption, validation) for corruption in ("rotate", "translate", "rotate+translate")
        for validation in ("rotate", "translate+rotate")}
    report = tmp_path / "report"
    analysed = run_command(["python", "-m", "analysis", str(run_dir), "--out", str(report)], timeout=300)
    assert analysed.returncode == 0, analysed.stderr[-3000:]
    page = (report / "index.html").read_text()
    for name in ("trained_on_rotate", "trained_on_translate", "trained_on_rotate+translate", "held_out_rotate",
                 "held_out_translate+rotate"):
        assert f'id="{name}"' in page and (report / f"{name}.csv").exists(), name
    summary = pd.read_csv(report / "compositions.csv")
    assert len(summary) == 6 and summary["held_out"].sum() == 5  # rotate@rotate is the one seen pair
    held_out = pd.read_csv(report / "held_out_translate+rotate.csv")
    assert sorted(held_out["corruption"]) == ["rotate", "rotate+translate", "translate"]
    tasks = set(pd.read_csv(report / "best_hyperparameters.csv")["task"])
    assert {"digits-none-False-rotate", "digits-none-False-rotate@translate+rotate"} <= tasks


def test_two_moons_learns_above_chance(tmp_path):
    options = TrainingOptions(task_cache=tmp_path / "cache", adjoints=False, threads=1)
    point = make_point(SearchSpace.complete({"architecture": "gru", "dataset": "two_moons", "hidden_dim": 16,
                                             "learning_rate": 0.01, "epochs": 4, "batch_size": 32}), 0, 0)
    result = train_point(point, options, tmp_path / "moons")
    assert result["status"] == "ok", result["error"]
    assert result["val_accuracy"] > 0.8, json.dumps(result)  # chance: 0.5
