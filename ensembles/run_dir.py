"""The run directory: created once, never overwritten, the history saved atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

HISTORY_FILE = "history.npy"
SPEC_FILE = "spec.yaml"
CHAIN_FILE = "chain.json"  # a job chain's record: its first job writes it before the run directory is made


class RunDirError(ValueError):
    pass


def create_run_dir(path: Path, spec_text: str) -> Path:
    """Make ``path`` and record the resolved spec there; refuse a directory that holds anything
    but the record of the job chain that is about to run it."""
    path = path.resolve()
    if path.exists() and (not path.is_dir() or any(entry.name != CHAIN_FILE for entry in path.iterdir())):
        raise RunDirError(
            f"--out {path} already exists and is not empty: taskgen never overwrites a run. "
            "Choose another --out, or remove the old run first."
        )
    path.mkdir(parents=True, exist_ok=True)
    (path / "sims").mkdir()
    (path / SPEC_FILE).write_text(spec_text)
    return path


def save_history(run_dir: Path, H: np.ndarray) -> Path:
    """Write then rename: a kill during a save leaves the previous complete file."""
    target = run_dir / HISTORY_FILE
    temporary = run_dir / (HISTORY_FILE + ".tmp")
    with open(temporary, "wb") as handle:
        np.save(handle, H)
    os.replace(temporary, target)
    return target
