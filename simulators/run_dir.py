"""The run directory and the sim directories in it: the one place that names their files.

    RUN_DIR/spec.yaml, history.npy, ensemble.log, sims/<identifier>/..., trainers/trainer-.../, wandb/,
            manager.lock, chain.json

It sits in ``simulators`` because the sim function and the trainers write into it; the manager
(``ensembles``, ``allocators``) and ``analysis`` read it through the same objects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class RunDirError(ValueError):
    """A run directory that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class SimDir:
    """One training's records: ``sims/<identifier>/`` (or any directory a standalone training uses)."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def point(self) -> Path:
        """The point's fields, written once by the worker before the training."""
        return self.path / "point.json"

    @property
    def result(self) -> Path:
        return self.path / "result.json"

    @property
    def history(self) -> Path:
        """Per-epoch metrics, rewritten after every epoch."""
        return self.path / "history.json"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.npz"

    @property
    def error(self) -> Path:
        """The traceback of a training that raised."""
        return self.path / "error.txt"

    @property
    def placement(self) -> Path:
        """Node, slot, GPUs and threads the training was given."""
        return self.path / "placement.json"

    @property
    def stdout(self) -> Path:
        return self.path / "train.out"

    @property
    def stderr(self) -> Path:
        return self.path / "train.err"

    @property
    def group(self) -> Path:
        """A vectorised group's member sim dirs, in the first member's directory."""
        return self.path / "group.json"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def run_dir(self) -> RunDir | None:
        """The run directory this sim dir is in (RUN_DIR/sims/<identifier>); None for a training on its own."""
        run_dir = RunDir(self.path.parent.parent)
        return run_dir if run_dir.sims == self.path.parent else None

    def sibling(self, identifier: str) -> SimDir:
        """The sim dir of another training of the same run (an asha parent)."""
        return SimDir(self.path.parent / identifier)

    def make(self) -> SimDir:
        self.path.mkdir(parents=True, exist_ok=True)
        return self


@dataclass(frozen=True)
class RunDir:
    """A run directory: created once, never overwritten, its history saved atomically."""

    path: Path

    @property
    def spec(self) -> Path:
        """The resolved spec, space inlined: exactly what ran."""
        return self.path / "spec.yaml"

    @property
    def history(self) -> Path:
        """libEnsemble's history array, one row per training."""
        return self.path / "history.npy"

    @property
    def log(self) -> Path:
        """libEnsemble's log (its own file name)."""
        return self.path / "ensemble.log"

    @property
    def sims(self) -> Path:
        return self.path / "sims"

    @property
    def trainers(self) -> Path:
        """Each warm trainer's inbox and its own output."""
        return self.path / "trainers"

    @property
    def wandb(self) -> Path:
        """Weights & Biases' offline runs (``simulator.tracking: wandb``); W&B names the folder itself."""
        return self.path / "wandb"

    @property
    def lock(self) -> Path:
        """Who runs it now: the manager's lock and heartbeat (``ensembles/ownership.py``)."""
        return self.path / "manager.lock"

    @property
    def chain(self) -> Path:
        """The jobs of a job chain that runs it (``theta_like_jobs/chain.py``); the chain's first
        job writes it before the run directory is created."""
        return self.path / "chain.json"

    def sim(self, identifier: str) -> SimDir:
        return SimDir(self.sims / identifier)

    def relative(self, sim_dir: SimDir) -> str:
        """What the history's ``sim_dir`` field holds: relative, so the run directory can move."""
        return str(sim_dir.path.relative_to(self.path))

    def sim_dirs(self) -> list[SimDir]:
        """Every sim directory recorded so far."""
        if not self.sims.is_dir():
            return []
        with os.scandir(self.sims) as entries:
            return [SimDir(Path(entry.path)) for entry in entries if entry.is_dir()]

    @classmethod
    def create(cls, path: Path, spec_text: str) -> RunDir:
        """Make ``path`` and record the resolved spec there; refuse a directory that holds anything
        but the record of the job chain that is about to run it."""
        path = Path(path).resolve()
        run_dir = cls(path)
        if path.exists() and (not path.is_dir() or any(entry != run_dir.chain for entry in path.iterdir())):
            raise RunDirError(
                f"--out {path} already exists and is not empty: taskgen never overwrites a run. "
                "Choose another --out, or remove the old run first."
            )
        path.mkdir(parents=True, exist_ok=True)
        run_dir.sims.mkdir()
        run_dir.spec.write_text(spec_text)
        return run_dir

    def save_history(self, H: np.ndarray) -> Path:
        """Write then rename: a kill during a save leaves the previous complete file."""
        temporary = self.history.with_name(self.history.name + ".tmp")
        with open(temporary, "wb") as handle:
            np.save(handle, H)
        os.replace(temporary, self.history)
        return self.history
