"""Optional experiment tracking: every training as a Weights & Biases run (``simulator.tracking: wandb``).

The sim dir's own records (and TensorBoard, when asked for) stay what they are; a W&B run is
a copy for people who read their experiments there. Its config is the training's point, its
metrics the per-epoch records (step = epoch), its summary the result; runs are grouped by the
ensemble's name. Compute nodes have no internet, so runs are written offline (unless
``WANDB_MODE`` says otherwise) under ``RUN_DIR/wandb`` (or ``$WANDB_DIR/wandb``), and the
ensemble prints the ``wandb sync`` command that uploads them from a login node.

A tracking failure never costs a training: it is reported once on stderr and that training goes
on untracked.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from simulators.run_dir import RunDir, SimDir

PROJECT = "taskgen"  # the W&B project unless WANDB_PROJECT names another
INSTALL = "pip install 'taskgen[wandb]' (or pip install wandb)"


def check_available(kind: str) -> str:
    """``kind``, or ValueError naming the install command when its package is missing."""
    if kind == "wandb" and importlib.util.find_spec("wandb") is None:
        raise ValueError(f"tracking: wandb needs the wandb package, which is not installed: {INSTALL}; "
                         "or set simulator.tracking: none")
    return kind


def run_dir_of(sim_dir: SimDir) -> RunDir:
    """The ensemble's run directory of ``sim_dir``; a training on its own is its own run directory."""
    return sim_dir.run_dir or RunDir(sim_dir.path)


def runs_root(run_dir: RunDir) -> Path:
    """Where W&B writes the runs of ``run_dir``: under WANDB_DIR if set, else the run directory's."""
    directory = os.environ.get("WANDB_DIR")
    return Path(directory) / run_dir.wandb.name if directory else run_dir.wandb


def group_name(run_dir: RunDir) -> str:
    """The ensemble's name from its spec; the directory's name for a training on its own."""
    try:
        return str(yaml.safe_load(run_dir.spec.read_text())["name"])
    except (OSError, yaml.YAMLError, TypeError, KeyError):
        return run_dir.path.name


class WandbTracker:
    """One training's W&B run."""

    def __init__(self, point: dict[str, Any], sim_dir: SimDir):
        import wandb

        run_dir = run_dir_of(sim_dir)
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", PROJECT),
            group=group_name(run_dir),
            name=str(point.get("identifier", sim_dir.name)),
            config=dict(point),
            dir=str(runs_root(run_dir).parent),
            mode=os.environ.get("WANDB_MODE", "offline"),
            reinit="create_new",  # a warm trainer or a vectorised group holds several, one per training
            settings=wandb.Settings(console="off", silent=True),  # train.out already has the output
        )

    def _safely(self, action) -> None:
        if self.run is None:
            return
        try:
            action()
        except Exception as error:  # noqa: BLE001 - tracking never costs a training
            print(f"warning: W&B tracking stopped for this training: {type(error).__name__}: {error}", file=sys.stderr)
            self.run = None

    def log(self, epoch: int, metrics: dict[str, float]) -> None:
        self._safely(lambda: self.run.log(dict(metrics), step=epoch))

    def finish(self, result: dict[str, Any]) -> None:
        def close() -> None:
            self.run.summary.update({name: value for name, value in result.items() if name != "sim_dir"})
            self.run.finish(exit_code=0 if result.get("status") in ("ok", "diverged") else 1)

        self._safely(close)


def start(kind: str, point: dict[str, Any], sim_dir: SimDir) -> WandbTracker | None:
    """The training's tracker; None when ``kind`` is none, or when it cannot start (the training goes on)."""
    if kind != "wandb":
        return None
    try:
        return WandbTracker(point, sim_dir)
    except Exception as error:  # noqa: BLE001 - tracking never costs a training
        print(f"warning: W&B tracking could not start, training untracked: {type(error).__name__}: {error}",
              file=sys.stderr)
        return None


def sync_hint(kind: str, run_dir: RunDir) -> str | None:
    """The line that says how to upload a run's offline W&B runs, or None when there is nothing to sync."""
    if kind != "wandb" or os.environ.get("WANDB_MODE", "offline") != "offline":
        return None
    root = runs_root(run_dir)
    count = len(list(root.glob("offline-run-*"))) if root.is_dir() else 0
    return (f"W&B: {count} offline runs in {root}; upload them from a machine with internet: "
            f"wandb sync {root}/offline-run-*")
