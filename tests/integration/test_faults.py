"""Failures are data: raising, exiting, segfaulting, hanging and diverging trainings are all
recorded with their status, and the rest of the ensemble finishes."""

import json
from collections import Counter

import numpy as np

from tests.helpers.fault_tasks import ATTEMPTS_ENV
from tests.helpers.runs import run_command

TIMEOUT_S = 75  # long enough for digits' 2 epochs on a loaded 2-core machine (40 s was not)
EXPECTED = {
    "digits": ("ok", ""),
    "fault_raise": ("failed", "RuntimeError: injected failure"),
    "fault_exit": ("failed", "trainer exited with code 7"),
    "fault_segfault": ("failed", "trainer killed by SIGSEGV"),
    "fault_sleep": ("timeout", f"killed after the sim timeout of {TIMEOUT_S:.1f} s"),
    "fault_nan": ("diverged", ""),
    "fault_flaky": ("ok", ""),  # fails its first attempt only: the retry trains it
}
# With retries: 1, failed trainings run twice; timeouts and divergence are results, not retried.
ATTEMPTS = {"raise": 2, "exit": 2, "segfault": 2, "sleep": 1, "nan": 1, "flaky": 2}


def test_every_kind_of_failure_is_recorded_and_the_ensemble_finishes(write_spec, tmp_path):
    spec_path = write_spec(
        space={"choices": {"architecture": ["rnn"], "dataset": list(EXPECTED), "hidden_dim": [8]}, "replicates": 1},
        # a fresh task cache: every attempt calls the task's load (a cached variant would skip it)
        simulator={"isolation": "process", "timeout": TIMEOUT_S, "retries": 1, "epochs": 2,
                   "task_cache": str(tmp_path / "cache")},
    )
    attempts_log = tmp_path / "attempts.txt"
    result = run_command(
        ["python", "run_ensemble.py", "--spec", str(spec_path), "--nworkers", "2", "--out", str(tmp_path / "run")],
        env={"TASKGEN_PLUGINS": "tests.helpers.fault_tasks", ATTEMPTS_ENV: str(attempts_log)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    H = np.load(tmp_path / "run" / "history.npy")
    assert len(H) == len(EXPECTED) and H["sim_ended"].all()
    for row in H:
        status, error = EXPECTED[row["dataset"]]
        assert (row["status"], row["error"][: len(error)]) == (status, error), row["dataset"]
    diverged = H[H["dataset"] == "fault_nan"][0]
    assert diverged["epochs_completed"] == 1 and np.isnan(diverged["loss"])
    history = json.loads((tmp_path / "run" / diverged["sim_dir"] / "history.json").read_text())
    assert len(history) == 1  # stopped at the first non-finite epoch
    assert "7 of 7 trainings finished (2 ok, 1 diverged, 3 failed, 1 timeout)" in result.stdout
    assert Counter(attempts_log.read_text().split()) == ATTEMPTS
