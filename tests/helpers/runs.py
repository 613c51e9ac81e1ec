"""Small specs and running project commands as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from ensembles.resume import history_dtype
from simulators.records import Status
from simulators.run_dir import RunDir

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def tiny_spec_dict(**sections) -> dict:
    """A spec of 4 quick trainings (rnn and gru on digits, 2 replicates); sections override."""
    spec = {
        "name": "tiny",
        "space": {
            "choices": {"architecture": ["rnn", "gru"], "dataset": ["digits"], "hidden_dim": [8]},
            "replicates": 2,
        },
        "generator": {"kind": "grid", "seed": 7},
        # ensemble mechanics, not learning: a quarter of digits, no adjoint probes
        "simulator": {"isolation": "inline", "epochs": 1, "batch_size": 64, "timeout": 300, "threads": 1,
                      "adjoints": False, "tasks": {"digits": {"train_samples": 384}}},
        "allocator": {"progress_interval": 0.5},
    }
    for name, value in sections.items():
        spec[name] = {**spec.get(name, {}), **value} if isinstance(value, dict) else value
    return spec


def finished_tiny_run(path: Path) -> RunDir:
    """A run directory of the tiny spec whose 4 trainings all finished, as a resume finds it."""
    run_dir = RunDir(path)
    path.mkdir(parents=True, exist_ok=True)
    run_dir.spec.write_text(yaml.safe_dump(tiny_spec_dict()))
    H = np.zeros(4, dtype=history_dtype() + [("sim_ended", bool)])
    H["status"], H["sim_ended"], H["identifier"] = Status.OK, True, [f"id{i}" for i in range(4)]
    run_dir.save_history(H)
    return run_dir


def run_command(args: list[str], cwd: Path = PROJECT_ROOT, timeout: float = 600, env: dict | None = None):
    """Run a project command as a user would, with this interpreter."""
    command = [sys.executable if arg == "python" else arg for arg in args]
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def start_ensemble(spec_path, run_dir):
    """The ensemble in its own process group, as a batch job runs it."""
    return subprocess.Popen(
        [sys.executable, "run_ensemble.py", "--spec", str(spec_path), "--nworkers", "2", "--out", str(run_dir)],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def wait_for_saved(run_dir, finished, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            H = np.load(RunDir(run_dir).history)
            if H["sim_ended"].sum() >= finished:
                return H
        except (FileNotFoundError, ValueError, EOFError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"no save with {finished} finished trainings within {timeout} s")
