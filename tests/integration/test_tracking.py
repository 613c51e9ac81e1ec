"""Weights & Biases tracking, offline (as on compute nodes): a training's W&B run holds its point as
the config and its per-epoch records as metrics, grouped by the ensemble's name. Skipped where
wandb is not installed."""

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
from simulators.run_dir import RunDir
from tests.helpers.training import train_point


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

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = RunDir.create(tmp_path / "run", "name: tracked_study\n")
    point = make_point(SearchSpace.complete({"architecture": "rnn", "dataset": "two_moons", "hidden_dim": 8,
                                             "learning_rate": 0.01, "epochs": 2, "batch_size": 64}), 0, 0)
    options = TrainingOptions(tracking="wandb", adjoints=False, threads=1, task_cache=tmp_path / "cache")
    sim_dir = run_dir.sim(point["identifier"])
    assert train_point(point, options, sim_dir.path)["status"] == "ok"

    runs = sorted((tmp_path / "wandb_dir" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    records = inspect(runs[0])
    run = next(record["run"] for record in records if record["type"] == "run")
    assert run["run_group"] == "tracked_study" and run["display_name"] == point["identifier"]
    config = run["config"]["update"]
    assert {name: config[name] for name in point} == point
    logged = [record["history"]["item"] for record in records if record["type"] == "history"]
    epochs = read_json(sim_dir.history)
    assert [item["_step"] for item in logged] == [1, 2]
    for item, epoch in zip(logged, epochs):
        assert item["loss"] == pytest.approx(epoch["loss"])
        assert item["val_accuracy"] == pytest.approx(epoch["val_accuracy"])
    hint = sync_hint("wandb", run_dir)
    assert hint.endswith(f"wandb sync {tmp_path / 'wandb_dir' / 'wandb'}/offline-run-*") and "1 offline runs" in hint
    assert sync_hint("none", run_dir) is None
