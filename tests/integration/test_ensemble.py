"""Whole ensembles through run_ensemble.py: local comms (inline and process isolation) and MPI."""

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from ensembles.loading import load_spec
from generators.grid import grid_points
from hypers.fields import point_fields
from simulators.records import RESULT_FIELDS
from tests.helpers.runs import run_command


def expected_identifiers(spec_path):
    spec = load_spec(spec_path)
    points = grid_points(spec.space, spec.replicates, spec.generator.seed, spec.point_defaults)
    return sorted(p["identifier"] for p in points)


def check_run(run_dir, spec_path):
    H = np.load(run_dir / "history.npy")
    assert sorted(H["identifier"]) == expected_identifiers(spec_path)
    assert H["sim_ended"].all() and (H["status"] == "ok").all(), H[["status", "error"]]
    for name in point_fields() + RESULT_FIELDS:
        assert name in H.dtype.names
    assert np.isfinite(H["loss"]).all() and np.isfinite(H["val_accuracy"]).all()
    assert (H["epochs_completed"] == 1).all() and (H["n_params"] > 0).all()
    for row in H:
        sim_dir = run_dir / "sims" / row["identifier"]
        assert row["sim_dir"] == f"sims/{row['identifier']}"  # relative: the run dir can move
        assert {"point.json", "history.json", "result.json"} <= {p.name for p in sim_dir.iterdir()}
    assert (run_dir / "spec.yaml").exists() and (run_dir / "ensemble.log").exists()
    return H


def test_local_inline_ensemble_trains_every_point_and_refuses_to_overwrite(write_spec, tmp_path):
    spec_path, run_dir = write_spec(), tmp_path / "run"
    result = run_command(["python", "run_ensemble.py", "--spec", str(spec_path), "--nworkers", "2",
                          "--out", str(run_dir)])
    assert result.returncode == 0, result.stderr[-3000:]
    check_run(run_dir, spec_path)
    assert "[0/4 trainings finished]" in result.stdout  # the manager's progress line
    assert "4 of 4 trainings finished (4 ok" in result.stdout and "Best per architecture" in result.stdout

    again = run_command(["python", "run_ensemble.py", "--spec", str(spec_path), "--out", str(run_dir)])
    assert again.returncode == 2 and "never overwrites" in again.stderr


def test_process_isolation_trains_in_a_trainer_per_worker_that_ends_with_the_run(write_spec, tmp_path):
    """4 trainings, 2 workers; with ``trainings_per_process: 1`` (tests/integration/test_warm_trainer.py)
    every training would get a trainer of its own."""
    spec_path = write_spec(simulator={"isolation": "process"})
    run_dir = tmp_path / "run"
    result = run_command(["python", "run_ensemble.py", "--spec", str(spec_path), "--nworkers", "2",
                          "--out", str(run_dir)])
    assert result.returncode == 0, result.stderr[-3000:]
    H = check_run(run_dir, spec_path)
    for row in H:
        assert (run_dir / "sims" / row["identifier"] / "train.out").read_text().startswith("ok:")
    trainers = list((run_dir / "trainers").iterdir())  # one inbox per trainer process started
    assert len(trainers) == len(set(H["sim_worker"]))
    deadline = time.monotonic() + 15
    while trainers_running(run_dir) and time.monotonic() < deadline:  # they notice their worker is gone
        time.sleep(0.5)
    assert not trainers_running(run_dir)


def trainers_running(run_dir) -> bool:
    """Is a trainer of this run still up (its command line names the run's inbox)?"""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if f"trainer_server.py\0{run_dir}".encode() in cmdline.read_bytes():
                return True
        except OSError:  # ended meanwhile
            continue
    return False


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="needs mpich's mpirun (pip install mpich mpi4py)")
def test_mpirun_without_comms_flag_trains_the_same_points_with_mpi_comms(write_spec, tmp_path):
    """The README's launch line as it stands: no --comms, the launcher's ranks decide."""
    spec_path = write_spec()
    result = run_command(["mpirun", "-np", "3", "python", "run_ensemble.py", "--spec", str(spec_path),
                          "--out", str(tmp_path / "mpi")])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "2 workers, comms mpi (PMI_SIZE=3)" in result.stdout
    H = check_run(tmp_path / "mpi", spec_path)
    assert set(H["sim_worker"]) == {1, 2}  # both MPI workers trained; the generator ran on the manager
    assert "comms: mpi" in (tmp_path / "mpi" / "spec.yaml").read_text()


def test_rank_only_launchers_ask_mpi_for_the_world_size():
    """Cray PALS and ALPS, and PMIx, set a rank but no size: MPI's own world decides (one rank
    here). In a process of its own: MPI, once initialised, stays so for the rest of the tests."""
    script = "from ensembles.comms import launched_comms; print(launched_comms({'PALS_RANKID': '0'}))"
    result = run_command(["python", "-c", script])
    assert result.stdout.strip() == "('local', 'PALS_RANKID set, 1 MPI ranks')", result.stderr[-2000:]


