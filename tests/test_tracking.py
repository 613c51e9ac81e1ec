"""Weights & Biases tracking, offline (as on compute nodes): a training's W&B run holds its point as
the config and its per-epoch records as metrics, grouped by the ensemble's name; a missing wandb
package fails the spec with the install command. Skipped where wandb is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from generators.points import make_point
from hypers.space import SearchSpace
from simulators.options import TrainingOptions
from simulators.records import read_json


def inspect(run: Path) -> list[dict]:
    """The records of an offline run's .wandb log, read by wandb's own reader."""
    wandb = Path(sys.executable).with_name("wandb")
    shown = subprocess.run([str(wandb), "leet", "inspect", "--json", str(run)], capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
    if "No such command" in shown.stderr or "Path does not exist: " in shown.stderr:  # no leet, or no inspect
        pytest.skip("this wandb has no `wandb leet inspect` to read offline runs with (wandb >= 0.31 has)")
    assert shown.returncode == 0, shown.stderr
    return [json.loads(line) for line in shown.stdout.splitlines() if line.startswith("{")]


def test_an_offline_wandb_run_holds_the_point_and_its_epochs(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from simulators.tracking import sync_hint
    from simulators.training import run_training

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = tmp_path / "run"
    (run_dir / "sims").mkdir(parents=True)
    (run_dir / "spec.yaml").write_text("name: tracked_study\n")
    point = make_point(SearchSpace.complete({"architecture": "rnn", "dataset": "two_moons", "hidden_dim": 8,
                                             "learning_rate": 0.01, "epochs": 2, "batch_size": 64}), 0, 0)
    options = TrainingOptions(tracking="wandb", adjoints=False, threads=1, task_cache=tmp_path / "cache")
    sim_dir = run_dir / "sims" / point["identifier"]
    assert run_training(point, options, sim_dir)["status"] == "ok"

    runs = sorted((tmp_path / "wandb_dir" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    records = inspect(runs[0])
    run = next(record["run"] for record in records if record["type"] == "run")
    assert run["run_group"] == "tracked_study" and run["display_name"] == point["identifier"]
    config = run["config"]["update"]
    assert {name: config[name] for name in point} == point
    logged = [record["history"]["item"] for record in records if record["type"] == "history"]
    epochs = read_json(sim_dir / "history.json")
    assert [item["_step"] for item in logged] == [1, 2]
    for item, epoch in zip(logged, epochs):
        assert item["loss"] == pytest.approx(epoch["loss"])
        assert item["val_accuracy"] == pytest.approx(epoch["val_accuracy"])
    hint = sync_hint("wandb", run_dir)
    assert hint.endswith(f"wandb sync {tmp_path / 'wandb_dir' / 'wandb'}/offline-run-*") and "1 offline runs" in hint
    assert sync_hint("none", run_dir) is None


def test_tracking_with_wandb_missing_names_the_install(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "wandb" else find_spec(name, *rest))
    with pytest.raises(ValueError, match=r"tracking: wandb needs the wandb package.*pip install 'taskgen\[wandb\]'"):
        TrainingOptions(tracking="wandb")
    assert TrainingOptions(tracking="none").tracking == "none"


def test_a_tracker_that_cannot_start_leaves_the_training_untracked(monkeypatch, capsys, tmp_path):
    from simulators import tracking

    def unreachable(point, sim_dir):
        raise OSError("no space left on device")

    monkeypatch.setattr(tracking, "WandbTracker", unreachable)
    assert tracking.start("wandb", {"identifier": "x"}, tmp_path) is None
    assert "W&B tracking could not start, training untracked: OSError: no space left" in capsys.readouterr().err
    assert tracking.start("none", {"identifier": "x"}, tmp_path) is None
