"""The warm trainer: one process runs a worker's trainings in turn, each as a fresh process
would, and stops when its worker is gone, however it was launched."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

from libensemble.executors import Executor

from hypers.fields import defaults
from simulators.inbox import TrainingRequest, trainer_output
from simulators.options import TrainingOptions
from simulators.records import EPOCH_TIMES
from simulators.run_dir import RunDir, SimDir
from simulators.trainer_client import TRAINER_SCRIPT, WarmTrainer, register_trainer, trainer_environment
from tests.helpers.training import record_points


def tiny(architecture, seed, dataset="digits"):
    return {**defaults(), "architecture": architecture, "dataset": dataset, "epochs": 1, "hidden_dim": 8,
            "batch_size": 64, "seed": seed, "replicate": 0, "identifier": f"{architecture}-{seed}", "resume_from": ""}


def start_trainer(run_dir, trainings):
    executor = Executor()
    register_trainer(executor)
    return WarmTrainer(executor, RunDir(run_dir), trainer_environment(threads=1), trainings)


def request(point, out):
    [sim_dir] = record_points([point], [out])
    return TrainingRequest(sim_dirs=[sim_dir.path], options=TrainingOptions(), stdout=sim_dir.stdout,
                           stderr=sim_dir.stderr)


def train(trainer, out, point):
    outcome = trainer.run(request(point, out), timeout=300)
    assert outcome.code == 0, SimDir(out).stderr.read_text()[-2000:]
    recorded = json.loads(SimDir(out).result.read_text())
    assert json.dumps(outcome.results[0], sort_keys=True) == json.dumps(recorded, sort_keys=True)  # the reply
    history = json.loads(SimDir(out).history.read_text())
    return [{k: v for k, v in epoch.items() if k not in EPOCH_TIMES} for epoch in history]


def test_a_warm_trainer_trains_each_point_as_a_fresh_process_would(tmp_path):
    warm = start_trainer(tmp_path, trainings=3)
    train(warm, tmp_path / "warm" / "first", tiny("gru", 3))
    trainer_pid = warm.task.process.pid
    after_another = train(warm, tmp_path / "warm" / "second", tiny("rnn", 5))
    assert warm.task.process.pid == trainer_pid and warm.task.process.poll() is None  # the same process, still up
    warm.retire()

    fresh = start_trainer(tmp_path, trainings=1)
    alone = train(fresh, tmp_path / "fresh", tiny("rnn", 5))
    fresh.retire()
    assert after_another == alone


def test_a_failed_training_is_answered_with_its_exit_code_and_its_recorded_failure(tmp_path):
    trainer = start_trainer(tmp_path, trainings=2)
    outcome = trainer.run(request(tiny("rnn", 0, dataset="nope"), tmp_path / "bad"), 60)
    assert outcome.code == 1 and outcome.results[0]["status"] == "failed"
    assert "unknown dataset 'nope'" in outcome.results[0]["error"] and SimDir(tmp_path / "bad").error.exists()
    assert trainer.task.process.poll() is None
    trainer.retire()
    trainer.task.process.wait(timeout=30)  # the stop request ends it


def test_a_trainer_launched_through_another_process_stays_with_its_worker_and_no_longer(tmp_path):
    """Under mpiexec the trainer's parent is the launcher's proxy, not the worker: it must not
    take that for its worker's death, and must still end when the worker does."""
    worker = subprocess.Popen(["sleep", "300"])  # stands in for the worker
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    environment = {**os.environ, **trainer_environment(threads=1), "TASKGEN_WORKER_PID": str(worker.pid),
                   "TASKGEN_WORKER_HOST": socket.gethostname()}
    launcher = subprocess.Popen(["sh", "-c", f'"{sys.executable}" "{TRAINER_SCRIPT}" "{inbox}"; exit $?'],
                                env=environment)  # sh stays the trainer's parent, as a proxy would
    try:
        time.sleep(5)  # more than two of the trainer's looks at its worker
        assert launcher.poll() is None
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        assert launcher.wait(timeout=20) == 1
    finally:
        for process in (launcher, worker):
            if process.poll() is None:
                process.kill()


def test_a_worker_keeps_its_trainer_until_its_resources_change(tmp_path):
    import simulators.trainer_client as warm

    executor = Executor()
    register_trainer(executor)
    on_gpu = {**trainer_environment(threads=1), "CUDA_VISIBLE_DEVICES": "0"}
    run_dir = RunDir(tmp_path)
    try:
        first = warm.trainer_for(executor, run_dir, on_gpu, 5, "node1")
        assert warm.trainer_for(executor, run_dir, on_gpu, 5, "node1") is first
        other_gpu = warm.trainer_for(executor, run_dir, {**on_gpu, "CUDA_VISIBLE_DEVICES": "1"}, 5, "node1")
        assert first.task.process.poll() == 0  # ended before the next started: its GPU memory is free
        other_node = warm.trainer_for(executor, run_dir, {**on_gpu, "CUDA_VISIBLE_DEVICES": "1"}, 5, "node2")
        assert len({id(first), id(other_gpu), id(other_node)}) == 3
        assert first.task.process.wait(timeout=30) == 0 and other_gpu.task.process.wait(timeout=30) == 0  # retired
    finally:
        warm.retire_trainer()


def test_a_trainer_gone_before_it_took_a_training_says_so_and_an_idle_one_exits(tmp_path):
    trainer = start_trainer(tmp_path, trainings=3)
    trainer.task.process.kill()  # e.g. the out-of-memory killer, while the trainer waited
    trainer.task.process.wait()
    outcome = trainer.run(request(tiny("rnn", 0), tmp_path / "never"), 60)
    assert outcome.never_began and outcome.stderr == trainer_output(trainer.inbox)[1]  # the worker sends it again

    inbox = tmp_path / "idle"
    inbox.mkdir()
    idle = subprocess.run([sys.executable, str(TRAINER_SCRIPT), str(inbox), "--idle-exit", "1"], timeout=60)
    assert idle.returncode == 0
