"""Shared fixtures: small specs written as real YAML files, and the project's root."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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


@pytest.fixture
def write_spec(tmp_path):
    def write(**sections) -> Path:
        path = tmp_path / "spec.yaml"
        path.write_text(yaml.safe_dump(tiny_spec_dict(**sections)))
        return path

    return write


def run_command(args: list[str], cwd: Path = PROJECT_ROOT, timeout: float = 600, env: dict | None = None):
    """Run a project command as a user would, with this interpreter."""
    import subprocess

    command = [sys.executable if arg == "python" else arg for arg in args]
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def finished_tiny_run(run_dir: Path) -> Path:
    """A run directory of the tiny spec whose 4 trainings all finished, as a resume finds it."""
    import numpy as np

    from hypers.fields import POINT_DTYPE
    from simulators.records import RESULT_DTYPE

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.yaml").write_text(yaml.safe_dump(tiny_spec_dict()))
    H = np.zeros(4, dtype=POINT_DTYPE + RESULT_DTYPE + [("sim_ended", bool)])
    H["status"], H["sim_ended"], H["identifier"] = "ok", True, [f"id{i}" for i in range(4)]
    np.save(run_dir / "history.npy", H)
    return run_dir
