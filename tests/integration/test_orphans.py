"""No orphans: when the manager of a run is SIGKILLed, its workers and their trainers exit within
60 s and nothing more is written into the run directory; while it ran, a second manager was
refused. Local comms (forked workers watch their manager) and MPI comms (mpich's Hydra kills the
other ranks; trainers launched through the MPIExecutor, in sessions of their own, follow their
workers)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
import yaml

from simulators.run_dir import RunDir
from simulators.trainer_client import TRAINER_SCRIPT
from tests.helpers.runs import PROJECT_ROOT, run_command, tiny_spec_dict

ORPHAN_DEADLINE_S = 60  # the bound for workers and trainers to be gone


@pytest.fixture
def endless_spec(tmp_path):
    """Trainings in trainer processes that outlast the test (500 epochs), a checkpoint every epoch:
    anything of the run left alive keeps writing into the run directory."""
    spec = tiny_spec_dict(
        space={"choices": {"architecture": ["gru"], "dataset": ["digits"], "hidden_dim": [8]}, "replicates": 4},
        simulator={"isolation": "process", "epochs": 500, "timeout": 600})
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture
def start(tmp_path):
    """Start a command in its own session, output to files (a killed manager leaves no pipe to
    drain); whatever of it a failing test leaves is killed."""
    launched = []

    def run(command, env=None):
        out, err = open(tmp_path / "stdout", "w"), open(tmp_path / "stderr", "w")
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=out, stderr=err, start_new_session=True,
                                   env={**os.environ, **(env or {})})
        launched.append(psutil.Process(process.pid))
        return process

    yield run
    for process in launched:
        with contextlib.suppress(psutil.Error):
            for left in [*process.children(recursive=True), process]:
                left.kill()


def wait_until_training(run_dir, launched, trainings=2, timeout=240):
    """Until ``trainings`` sims have finished an epoch (their trainers are mid-training)."""
    deadline = time.monotonic() + timeout
    while sum(sim_dir.history.exists() for sim_dir in RunDir(run_dir).sim_dirs()) < trainings:
        assert time.monotonic() < deadline and launched.poll() is None, (launched.poll(), run_dir)
        time.sleep(0.5)


def snapshot(run_dir):
    return {path: (path.stat().st_size, path.stat().st_mtime_ns) for path in run_dir.rglob("*") if path.is_file()}


def assert_gone_and_silent(processes, run_dir, killed_at):
    """Every process of the run ends within the deadline, and the run directory stays as it is then."""
    _, alive = psutil.wait_procs(processes, timeout=max(0.0, killed_at + ORPHAN_DEADLINE_S - time.monotonic()))
    assert not alive, [" ".join(p.cmdline()[:4]) for p in alive]
    seconds = time.monotonic() - killed_at
    before = snapshot(run_dir)
    time.sleep(3)
    assert snapshot(run_dir) == before
    return seconds


def assert_second_manager_refused(run_dir, manager_pid):
    second = run_command(["python", "run_ensemble.py", "--resume", str(run_dir), "--nworkers", "2"])
    assert second.returncode == 2, second.stderr[-2000:]
    assert f"is being run by another manager: host {socket.gethostname()}, pid {manager_pid}, started " in second.stderr
    assert "last heartbeat" in second.stderr


def test_sigkilled_local_manager_leaves_no_worker_or_trainer_behind(endless_spec, tmp_path, start):
    run_dir = tmp_path / "run"
    manager = start([sys.executable, "run_ensemble.py", "--spec", str(endless_spec), "--out", str(run_dir),
                     "--nworkers", "2"])
    wait_until_training(run_dir, manager)
    assert_second_manager_refused(run_dir, manager.pid)
    processes = psutil.Process(manager.pid).children(recursive=True)
    trainers = [p for p in processes if str(TRAINER_SCRIPT) in p.cmdline()]
    assert len(processes) == 4 and len(trainers) == 2  # 2 forked workers, each with its trainer

    manager.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    seconds = assert_gone_and_silent(processes, run_dir, killed_at)  # the manager a zombie meanwhile: not reaped
    manager.wait()
    assert seconds < 15  # each worker looks at its manager every 2 s, then stops its trainer
    assert (tmp_path / "stderr").read_text().count("is gone: its process ended") == 2
    assert RunDir(run_dir).lock.exists()  # left behind: the next manager takes it over (tests/unit/test_ownership.py)


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="needs mpich's mpirun (pip install mpich mpi4py)")
def test_sigkilled_mpi_manager_leaves_no_rank_or_trainer_behind(endless_spec, tmp_path, start):
    """What mpich's Hydra does when rank 0 dies: it kills the other ranks (SIGKILL) at once. Two
    node names make the workers launch their trainers through the MPIExecutor (a nested mpiexec in
    a session of its own, which that kill does not reach): the trainers follow their dead workers."""
    nodes = tmp_path / "nodefile"
    nodes.write_text(f"localhost\n{socket.gethostname()}\n")
    run_dir = tmp_path / "run"
    launcher = start(["mpirun", "-np", "3", sys.executable, "run_ensemble.py", "--spec", str(endless_spec),
                      "--out", str(run_dir)], env={"PBS_NODEFILE": str(nodes)})
    wait_until_training(run_dir, launcher)
    ranks = [p for p in psutil.Process(launcher.pid).children(recursive=True) if "run_ensemble.py" in p.cmdline()]
    manager = next(p for p in ranks if p.environ()["PMI_RANK"] == "0")
    assert_second_manager_refused(run_dir, manager.pid)
    processes = psutil.Process(launcher.pid).children(recursive=True)
    # the trainers themselves (the app is launched with this Python), not the mpiexec that launched each
    trainers = [p for p in processes if p.cmdline()[:2] == [sys.executable, str(TRAINER_SCRIPT)]]
    assert len(trainers) == 2
    assert {os.getsid(p.pid) for p in trainers}.isdisjoint({os.getsid(r.pid) for r in ranks})  # own sessions

    manager.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    seconds = assert_gone_and_silent([psutil.Process(launcher.pid), *processes], run_dir, killed_at)
    assert seconds < 15
