"""Writing job scripts as a user does (python -m theta_like_jobs)."""

from __future__ import annotations

from tests.helpers.runs import PROJECT_ROOT
from theta_like_jobs.cli import main

SPEC = PROJECT_ROOT / "ensembles" / "gen_sweep.yaml"


def write_job(tmp_path, args, name="job.sh"):
    path = tmp_path / name
    assert main([*args, "-o", str(path)]) == 0
    return path.read_text(), path
