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

from simulators.sim import TRAINER_SCRIPT, trainer_environment
from simulators.warm_trainer import TRAINER_APP, WarmTrainer

TINY = "--dataset digits --epochs 1 --hidden-dim 8 --batch-size 64"


def start_trainer(run_dir, trainings):
    executor = Executor()
    executor.register_app(full_path=str(TRAINER_SCRIPT), app_name=TRAINER_APP, precedent=sys.executable)
    return WarmTrainer(executor, run_dir, trainer_environment(threads=1), trainings)


def train(trainer, out, arguments):
    out.mkdir(parents=True)
    outcome = trainer.run([*arguments.split(), "--out", str(out)], out / "train.out", out / "train.err", timeout=300)
    assert outcome.code == 0, (out / "train.err").read_text()[-2000:]
    return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in json.loads((out / "history.json").read_text())]


def test_a_warm_trainer_trains_each_point_as_a_fresh_process_would(tmp_path):
    warm = start_trainer(tmp_path, trainings=3)
    train(warm, tmp_path / "warm" / "first", f"--architecture gru --seed 3 {TINY}")
    trainer_pid = warm.task.process.pid
    after_another = train(warm, tmp_path / "warm" / "second", f"--architecture rnn --seed 5 {TINY}")
    assert warm.task.process.pid == trainer_pid and warm.task.process.poll() is None  # the same process, still up
    warm.retire()

    fresh = start_trainer(tmp_path, trainings=1)
    alone = train(fresh, tmp_path / "fresh", f"--architecture rnn --seed 5 {TINY}")
    fresh.retire()
    assert after_another == alone


def test_a_failed_command_is_answered_with_its_exit_code_and_its_error_in_its_stderr(tmp_path):
    trainer = start_trainer(tmp_path, trainings=2)
    out = tmp_path / "bad"
    out.mkdir()
    outcome = trainer.run(["--architecture", "rnn", "--dataset", "nope", "--out", str(out)], out / "train.out",
                          out / "train.err", 60)
    assert outcome.code == 1 and "--dataset: 'dataset' got 'nope'" in (out / "train.err").read_text()
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
    launcher = subprocess.Popen(["sh", "-c", f'"{sys.executable}" "{TRAINER_SCRIPT}" --serve "{inbox}"; exit $?'],
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
    import simulators.warm_trainer as warm

    executor = Executor()
    executor.register_app(full_path=str(TRAINER_SCRIPT), app_name=TRAINER_APP, precedent=sys.executable)
    on_gpu = {**trainer_environment(threads=1), "CUDA_VISIBLE_DEVICES": "0"}
    try:
        first = warm.trainer_for(executor, tmp_path, on_gpu, 5, "node1")
        assert warm.trainer_for(executor, tmp_path, on_gpu, 5, "node1") is first
        other_gpu = warm.trainer_for(executor, tmp_path, {**on_gpu, "CUDA_VISIBLE_DEVICES": "1"}, 5, "node1")
        other_node = warm.trainer_for(executor, tmp_path, {**on_gpu, "CUDA_VISIBLE_DEVICES": "1"}, 5, "node2")
        assert len({id(first), id(other_gpu), id(other_node)}) == 3
        assert first.task.process.wait(timeout=30) == 0 and other_gpu.task.process.wait(timeout=30) == 0  # retired
    finally:
        warm.retire_trainer()


def test_trainers_share_gpus_and_keep_their_environment_from_sim_to_sim(monkeypatch):
    """Every trainer allocates GPU memory on demand (several share a GPU, whatever the engine),
    a user's own setting wins, and the environment is the same on every call, so the worker's
    trainer is not restarted for nothing."""
    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    monkeypatch.setenv("TF_FORCE_GPU_ALLOW_GROWTH", "false")
    first = trainer_environment(threads=2, engine="auto")
    assert first["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" and first["TF_FORCE_GPU_ALLOW_GROWTH"] == "false"
    for name, value in first.items():
        monkeypatch.setenv(name, value)
    assert trainer_environment(threads=2, engine="auto") == first


def test_a_trainer_gone_before_it_took_a_training_says_so_and_an_idle_one_exits(tmp_path):
    trainer = start_trainer(tmp_path, trainings=3)
    trainer.task.process.kill()  # e.g. the out-of-memory killer, while the trainer waited
    trainer.task.process.wait()
    out = tmp_path / "never"
    out.mkdir()
    outcome = trainer.run(["--architecture", "rnn", *TINY.split(), "--out", str(out)], out / "train.out",
                          out / "train.err", 60)
    assert outcome.never_began and outcome.stderr == trainer.inbox / "trainer.err"  # the worker sends it again

    inbox = tmp_path / "idle"
    inbox.mkdir()
    idle = subprocess.run([sys.executable, str(TRAINER_SCRIPT), "--serve", str(inbox), "--idle-exit", "1"], timeout=60)
    assert idle.returncode == 0
