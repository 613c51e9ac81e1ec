"""Nothing lost: a killed manager's run resumes with every point exactly once, finished results
unchanged; a killed training resumes from its checkpoint; a resume is refused while another
manager runs the run directory."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from ensembles.ownership import LockRecord
from tests.helpers.runs import PROJECT_ROOT, finished_tiny_run, run_command, start_ensemble, wait_for_saved

# What a resume must change in a finished row: its position in the new H (libEnsemble looks rows
# up by sim_id) and when the generator learnt of it (libEnsemble hands H0 to the new run's
# generator when it starts and stamps that; a periodic save may come before the old one was told).
RENUMBERED = {"sim_id", "gen_informed", "gen_informed_time"}


def assert_finished_rows_kept(before, after):
    """Every field of every row finished before is the same after (NaN equal to NaN)."""
    finished = before[before["sim_ended"]]
    assert set(finished.dtype.names) <= set(after.dtype.names)
    kept = after[np.isin(after["identifier"], finished["identifier"])]
    kept = kept[np.argsort(kept["identifier"])]
    finished = finished[np.argsort(finished["identifier"])]
    assert len(kept) == len(finished)
    for name in set(finished.dtype.names) - RENUMBERED:
        np.testing.assert_array_equal(kept[name], finished[name], err_msg=name)


def result_files(run_dir):
    """Each training's result.json and when it was written: a point trained twice rewrites it."""
    return {path.parent.name: path.stat().st_mtime_ns for path in (run_dir / "sims").glob("*/result.json")}


@pytest.fixture
def six_point_spec(write_spec):
    return write_spec(
        space={"choices": {"architecture": ["rnn", "gru", "lstm"], "dataset": ["digits"], "hidden_dim": [8]},
               "replicates": 2},
        simulator={"epochs": 3},
        allocator={"save_every": 1},
    )


@pytest.mark.parametrize("kill", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_run_resumes_with_every_point_once_and_finished_results_unchanged(six_point_spec, tmp_path, kill):
    run_dir = tmp_path / "run"
    process = start_ensemble(six_point_spec, run_dir)
    wait_for_saved(run_dir, finished=2)
    os.killpg(process.pid, kill)  # a scheduler kills the whole job
    _, stderr = process.communicate(timeout=60)
    before = np.load(run_dir / "history.npy")
    written_before = result_files(run_dir)  # may include trainings that ended after the last save
    assert 2 <= before["sim_ended"].sum() <= len(written_before) and before["sim_ended"].sum() < 6
    if kill == signal.SIGTERM:
        assert "received SIGTERM" in stderr and f"--resume {run_dir}" in stderr

    result = run_command(["python", "run_ensemble.py", "--resume", str(run_dir), "--nworkers", "2"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{before['sim_ended'].sum()} trainings finished earlier" in result.stdout
    after = np.load(run_dir / "history.npy")
    assert len(after) == 6 and after["sim_ended"].all() and (after["status"] == "ok").all()
    assert len(set(after["identifier"])) == 6
    assert_finished_rows_kept(before, after)
    written_after = result_files(run_dir)
    assert len(written_after) == 6  # trainings = points
    assert {i: written_after[i] for i in written_before} == written_before  # none of them trained again
    saved = (run_dir / "history.npy").read_bytes()
    again = run_command(["python", "run_ensemble.py", "--resume", str(run_dir)])
    assert again.returncode == 0 and "already finished" in again.stdout
    assert (run_dir / "history.npy").read_bytes() == saved  # untouched (NaN fields defeat array_equal)


def test_resume_refuses_to_change_the_points(six_point_spec, tmp_path):
    result = run_command(["python", "run_ensemble.py", "--resume", str(tmp_path), "--set", "simulator.epochs=9"])
    assert result.returncode == 2 and "only exit_criteria." in result.stderr


def test_training_killed_after_epoch_2_of_4_resumes_from_its_checkpoint(tmp_path):
    command = [sys.executable, "-m", "simulators.train", "--architecture", "gru", "--dataset", "digits",
               "--epochs", "4", "--hidden-dim", "8", "--out", str(tmp_path)]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history_file = tmp_path / "history.json"
    deadline = time.monotonic() + 180
    while not (history_file.exists() and len(json.loads(history_file.read_text())) >= 2):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.kill()
    process.wait()
    first_two = json.loads(history_file.read_text())[:2]
    assert (tmp_path / "checkpoint.npz").exists()

    finished = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    history = json.loads(history_file.read_text())
    assert [epoch["epoch"] for epoch in history] == [1, 2, 3, 4]
    with np.load(tmp_path / "checkpoint.npz") as checkpoint:
        assert int(checkpoint["epoch"]) == 4
    resumed_from = 2 if history[:2] == first_two else 1  # a kill between history and checkpoint costs an epoch
    assert history[:resumed_from] == first_two[:resumed_from]
    assert json.loads((tmp_path / "result.json").read_text())["epochs_completed"] == 4


def test_dead_worker_ends_the_run_with_history_saved_and_resume_completes_it(six_point_spec, tmp_path):
    import psutil

    run_dir = tmp_path / "run"
    process = start_ensemble(six_point_spec, run_dir)
    wait_for_saved(run_dir, finished=1)
    worker = psutil.Process(process.pid).children()[0]
    worker.kill()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 3
    assert "lost worker" in stderr and f"pid {worker.pid}" in stderr
    assert np.load(run_dir / "history.npy")["sim_ended"].sum() >= 1

    result = run_command(["python", "run_ensemble.py", "--resume", str(run_dir), "--nworkers", "2"])
    assert result.returncode == 0, result.stderr[-3000:]
    after = np.load(run_dir / "history.npy")
    assert len(after) == 6 and len(set(after["identifier"])) == 6 and (after["status"] == "ok").all()


def test_resume_is_refused_while_a_manager_holds_the_run_and_takes_a_dead_ones_lock_over(tmp_path):
    run_dir = finished_tiny_run(tmp_path / "run")
    saved = run_dir.history.read_bytes()
    holder = subprocess.Popen(["sleep", "60"])
    try:
        run_dir.lock.write_text(LockRecord.for_this_process().model_copy(update={
            "pid": holder.pid, "created": psutil.Process(holder.pid).create_time()}).model_dump_json())
        refused = run_command(["python", "run_ensemble.py", "--resume", str(run_dir.path)])
        assert refused.returncode == 2, refused.stderr[-2000:]
        assert f"is being run by another manager: host {socket.gethostname()}, pid {holder.pid}" in refused.stderr
        assert "already finished" not in refused.stdout
        status = run_command(["python", "-m", "analysis", str(run_dir.path), "--status"])
        assert f"manager: host {socket.gethostname()}, pid {holder.pid}" in status.stdout
    finally:
        holder.kill()
        holder.wait()
    resumed = run_command(["python", "run_ensemble.py", "--resume", str(run_dir.path)])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"took over the stale lock of {run_dir.path}" in resumed.stderr
    assert f"pid {holder.pid} no longer runs" in resumed.stderr
    assert "already finished (4 trainings)" in resumed.stdout
    assert not run_dir.lock.exists()
    assert run_dir.history.read_bytes() == saved
