"""The worker's side of its trainer process, kept warm between its trainings.

Starting a trainer costs seconds, nearly all of it importing Keras and its backend: a tenth of a
minute-long training. So each worker starts one trainer (``simulators/trainer_server.py INBOX``,
through libEnsemble's executor, hence on the node of the worker's resource set) and hands it its
training requests one after another (``simulators/inbox.py``). The isolation stays: a trainer
that crashes or is killed on a timeout takes down the training it was running, and the worker's
next training gets a fresh one. A trainer is also replaced after any failed training (its state is suspect) and after
``trainings_per_process`` trainings (memory a backend leaks across trainings stays bounded).
"""

from __future__ import annotations

import atexit
import multiprocessing.util
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libensemble.message_numbers import TASK_FAILED, TASK_FAILED_TO_START, WORKER_DONE, WORKER_KILL_ON_TIMEOUT

from simulators.inbox import (
    STOP,
    TrainingReply,
    TrainingRequest,
    poll_delays,
    reply_path,
    request_path,
    trainer_output,
)
from simulators.records import read_json, write_json
from simulators.run_dir import RunDir

TRAINER_APP = "trainer"
TRAINER_SCRIPT = Path(__file__).with_name("trainer_server.py")
PROJECT_ROOT = TRAINER_SCRIPT.parent.parent
# libEnsemble's MPIExecutor starts the trainer on the node of the worker's resource set
LAUNCH_ONE_PROCESS = {"MPIExecutor": {"num_procs": 1, "num_nodes": 1}}


def register_trainer(executor) -> None:
    """Tell libEnsemble's executor how to start a trainer (in the manager, before ``libE()``)."""
    executor.register_app(full_path=str(TRAINER_SCRIPT), app_name=TRAINER_APP, precedent=sys.executable)
    executor.wait_time = 10  # seconds between SIGTERM and SIGKILL for a timed-out training


def trainer_environment(threads: int | None, engine: str = "fit") -> dict[str, str]:
    """What the trainer process needs on top of the worker's environment."""
    others = [path for path in os.environ.get("PYTHONPATH", "").split(os.pathsep) if path and path != str(PROJECT_ROOT)]
    environment = {
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), *others]),  # the same on every call: no restarts
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TASKGEN_WORKER_PID": str(os.getpid()),  # the trainer exits if its worker dies
        "TASKGEN_WORKER_HOST": socket.gethostname(),
    }
    if threads:
        environment["OMP_NUM_THREADS"] = str(threads)
    if engine == "jax":
        environment["KERAS_BACKEND"] = "jax"
    return environment


@dataclass(frozen=True)
class Outcome:
    """How one request ended: libEnsemble's ``calc_status`` for it; its exit code, the trainer's
    reply or, when the trainer died, the trainer's (None after a timeout's kill); the stderr file
    that tells why it failed; whether the trainer had ended before it took the request (then it
    can be sent to a fresh trainer as if never tried); and the results the trainer replied with."""

    calc_status: int
    code: int | None
    stderr: Path
    never_began: bool = False
    results: tuple[dict[str, Any], ...] = ()


class WarmTrainer:
    """A trainer process started with ``environment`` (inherited from the worker's) on ``node``
    (the node of the worker's resource set, where the executor starts it)."""

    def __init__(self, executor, run_dir: RunDir, environment: dict[str, str], trainings: int, node: str | None = None):
        run_dir.trainers.mkdir(exist_ok=True)
        self.inbox = Path(tempfile.mkdtemp(prefix="trainer-", dir=run_dir.trainers))
        self.environment = environment
        self.node = node
        self.trainings_left = trainings
        self.sent = 0
        self.retired = False
        self.kill_wait = executor.wait_time  # seconds between SIGTERM and SIGKILL
        os.environ.update(environment)  # libEnsemble's executor starts the trainer with the worker's
        stdout, stderr = trainer_output(self.inbox)
        self.task = executor.submit(**LAUNCH_ONE_PROCESS.get(type(executor).__name__, {}), app_name=TRAINER_APP,
                                    app_args=str(self.inbox), stdout=str(stdout), stderr=str(stderr))

    def ended(self) -> bool:
        if self.task.finished:  # a launch that failed to start has no process to poll
            return True
        self.task.poll()
        return self.task.finished

    def usable_with(self, environment: dict[str, str], node: str | None) -> bool:
        """Up, not spent, and where a training with these resources must run?"""
        return (not self.retired and not self.ended() and self.trainings_left > 0
                and (environment, node) == (self.environment, self.node))

    def run(self, request: TrainingRequest, timeout: float) -> Outcome:
        """Have the trainer answer ``request``, killing it after ``timeout`` s."""
        self.sent += 1
        self.trainings_left -= 1
        write_json(request_path(self.inbox, self.sent), request.model_dump(mode="json"))
        outcome = self._wait(reply_path(self.inbox, self.sent), request.stderr, timeout)
        if self.trainings_left == 0:
            self.retire()  # spent: free its memory now, not at the worker's next sim
        return outcome

    def _wait(self, reply: Path, stderr: Path, timeout: float) -> Outcome:
        deadline = time.monotonic() + timeout
        for delay in poll_delays():
            ended = self.ended()
            if reply.exists():  # before the trainer's end: it may have replied, then died
                answer = TrainingReply.model_validate(read_json(reply))
                reply.unlink()
                status = WORKER_DONE if answer.code == 0 else TASK_FAILED
                return Outcome(status, answer.code, stderr, results=tuple(answer.results))
            if ended:
                status = TASK_FAILED_TO_START if self.task.state == "FAILED_TO_START" else TASK_FAILED
                never_began = request_path(self.inbox, self.sent).exists()  # its stderr is an earlier attempt's
                told_why = not never_began and stderr.exists() and stderr.stat().st_size
                why = stderr if told_why else trainer_output(self.inbox)[1]
                return Outcome(status, self.task.errcode, why, never_began)
            if time.monotonic() > deadline:
                self.task.kill(self.kill_wait)
                return Outcome(WORKER_KILL_ON_TIMEOUT, None, stderr)
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))

    def retire(self) -> None:
        """Let the trainer finish: it exits at its next look at the inbox (this worker's next
        trainer starts once it has: ``_await_retired``)."""
        if not self.retired and not self.ended():
            write_json(request_path(self.inbox, self.sent + 1), STOP)
            _retired.append(self)
        self.retired = True

    def await_end(self) -> None:
        """Wait until the trainer has ended; kill it after ``kill_wait`` s."""
        deadline = time.monotonic() + self.kill_wait
        while not self.ended() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.ended():
            self.task.kill(self.kill_wait)


_trainer: WarmTrainer | None = None  # this worker's, between sims
_retired: list[WarmTrainer] = []  # told to stop, perhaps not yet ended
_hooked_pid: int | None = None  # the process whose exit stops its trainer


def trainer_for(executor, run_dir: RunDir, environment: dict[str, str], trainings: int,
                node: str | None = None) -> WarmTrainer:
    """The worker's warm trainer, started (again) when it has none, its trainer ended, served
    its ``trainings``, or runs with other resources (libEnsemble may give the worker's next sim
    another resource set: other GPUs, another node)."""
    global _trainer
    _stop_trainer_when_worker_ends()
    if _trainer is not None and not _trainer.usable_with(environment, node):
        _trainer.retire()
        _trainer = None
    if _trainer is None:
        _await_retired()
        _trainer = WarmTrainer(executor, run_dir, environment, trainings, node)
    return _trainer


def _await_retired() -> None:
    """Before the worker starts a trainer, its retired ones have ended: on JAX a trainer takes its
    slice of the GPU's memory as it starts, and theirs must be free by then."""
    while _retired:
        _retired.pop().await_end()


def retire_trainer() -> None:
    """After a failed training: the next gets a fresh trainer."""
    global _trainer
    if _trainer is not None:
        _trainer.retire()
        _trainer = None


def _stop_trainer_when_worker_ends() -> None:
    """A worker that ends normally stops its trainer: through atexit under MPI comms, through
    multiprocessing's exit hooks in a forked local-comms worker (which leaves by ``os._exit``).
    A worker killed outright is noticed by the trainer itself (``exit_with_worker``, an idle
    timeout)."""
    global _hooked_pid
    if _hooked_pid != os.getpid():
        atexit.register(retire_trainer)
        multiprocessing.util.Finalize(None, retire_trainer, exitpriority=10)
        _hooked_pid = os.getpid()
