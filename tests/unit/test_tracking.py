"""Weights & Biases tracking without a training: a missing wandb package fails the options with
the install command, and a tracker that cannot start leaves its training untracked."""

from __future__ import annotations

import pytest

from simulators.options import TrainingOptions
from simulators.run_dir import SimDir


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
    assert tracking.start("wandb", {"identifier": "x"}, SimDir(tmp_path)) is None
    assert "W&B tracking could not start, training untracked: OSError: no space left" in capsys.readouterr().err
    assert tracking.start("none", {"identifier": "x"}, SimDir(tmp_path)) is None


def test_offline_runs_go_to_the_run_directory_unless_wandb_dir_says_otherwise(monkeypatch, tmp_path):
    from simulators import tracking
    from simulators.run_dir import RunDir

    monkeypatch.delenv("WANDB_DIR", raising=False)
    run_dir = RunDir.create(tmp_path / "run", "name: study\n")
    assert tracking.run_dir_of(run_dir.sim("abc")) == run_dir and tracking.group_name(run_dir) == "study"
    assert tracking.runs_root(run_dir) == run_dir.wandb == run_dir.path / "wandb"
    alone = tracking.run_dir_of(SimDir(tmp_path / "alone"))  # a standalone training: its own directory
    assert alone.path == tmp_path / "alone" and tracking.group_name(alone) == "alone"
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))
    assert tracking.runs_root(run_dir) == tmp_path / "elsewhere" / "wandb"
