"""Job chains (python -m theta_like_jobs ... --chain N): a chain needs a script file and at least
two jobs, and its first job may start its run in a directory that holds only the chain's record.
The chain's jobs run as a scheduler would: tests/integration/test_chain_jobs.py."""

from __future__ import annotations

import pytest

from simulators.run_dir import RunDir, RunDirError
from theta_like_jobs.cli import main


@pytest.mark.parametrize(("extra", "why"), [(["--chain", "3"], "needs -o FILE"),
                                           (["--chain", "1", "-o", "job.sh"], "at least 2 jobs")])
def test_a_chain_needs_a_script_file_and_two_jobs(tmp_path, capsys, extra, why, write_spec):
    args = ["--platform", "polaris", "--spec", str(write_spec()), "--nodes", "1", "--walltime", "01:00:00",
            "--queue", "q", "--account", "a", "--venv", "/v", *extra]
    assert main([str(tmp_path / arg) if arg == "job.sh" else arg for arg in args]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --chain: ") and why in error


def test_the_first_job_starts_its_run_in_a_directory_holding_only_the_chain_record(tmp_path):
    run_dir = RunDir(tmp_path.resolve() / "run")
    run_dir.path.mkdir()
    run_dir.chain.write_text("{}")
    assert RunDir.create(run_dir.path, "name: tiny\n") == run_dir
    with pytest.raises(RunDirError, match="already exists and is not empty"):
        RunDir.create(run_dir.path, "name: tiny\n")
