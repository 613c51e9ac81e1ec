"""A worker's trainer process, kept warm between its trainings.

Starting a trainer costs seconds, nearly all of it importing Keras and its backend: a tenth of a
minute-long training. So each worker starts one trainer (``simulators/train.py --serve INBOX``,
through libEnsemble's executor, hence on the node of the worker's resource set) and hands it its
trainings one after another. The isolation stays: a trainer that crashes or is killed on a
timeout takes down the training it was running, and the worker's next training gets a fresh
one. A trainer is also replaced after any failed training (its state is suspect) and after
``trainings_per_process`` trainings (memory a backend leaks across trainings stays bounded).
"""

from __future__ import annotations

import atexit
import multiprocessing.util
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from libensemble.message_numbers import TASK_FAILED, TASK_FAILED_TO_START, WORKER_DONE, WORKER_KILL_ON_TIMEOUT

from simulators.inbox import poll_delays, reply_path, request_path
from simulators.records import read_json, write_json
from simulators.run_dir import RunDir

TRAINER_APP = "trainer"
# libEnsemble's MPIExecutor starts the trainer on the node of the worker's resource set
LAUNCH_ONE_PROCESS = {"MPIExecutor": {"num_procs": 1, "num_nodes": 1}}


@dataclass(frozen=True)
class Outcome:
    """How one training's command ended: libEnsemble's ``calc_status`` for it; its exit code, the
    trainer's reply or, when the trainer died, the trainer's (None after a timeout's kill); the
    stderr file that tells why it failed; and whether the trainer had ended before it took the
    training (then it can be sent to a fresh trainer as if never tried)."""

    calc_status: int
    code: int | None
    stderr: Path
    never_began: bool = False


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
        self.task = executor.submit(
            **LAUNCH_ONE_PROCESS.get(type(executor).__name__, {}),
            app_name=TRAINER_APP,
            app_args=f"--serve {self.inbox}",
            stdout=str(self.inbox / "trainer.out"),
            stderr=str(self.inbox / "trainer.err"),
        )

    def ended(self) -> bool:
        if self.task.finished:  # a launch that failed to start has no process to poll
            return True
        self.task.poll()
        return self.task.finished

    def usable_with(self, environment: dict[str, str], node: str | None) -> bool:
        """Up, not spent, and where a training with these resources must run?"""
        return (not self.retired and not self.ended() and self.trainings_left > 0
                and (environment, node) == (self.environment, self.node))

    def run(self, argv: list[str], stdout: Path, stderr: Path, timeout: float) -> Outcome:
        """Run ``simulators/train.py ARGV`` in the trainer, killing it after ``timeout`` s."""
        self.sent += 1
        self.trainings_left -= 1
        write_json(request_path(self.inbox, self.sent), {"argv": argv, "stdout": stdout, "stderr": stderr})
        outcome = self._wait(reply_path(self.inbox, self.sent), stderr, timeout)
        if self.trainings_left == 0:
            self.retire()  # spent: free its memory now, not at the worker's next sim
        return outcome

    def _wait(self, reply: Path, stderr: Path, timeout: float) -> Outcome:
        deadline = time.monotonic() + timeout
        for delay in poll_delays():
            ended = self.ended()
            if reply.exists():  # before the trainer's end: it may have replied, then died
                code = read_json(reply)["code"]
                reply.unlink()
                return Outcome(WORKER_DONE if code == 0 else TASK_FAILED, code, stderr)
            if ended:
                status = TASK_FAILED_TO_START if self.task.state == "FAILED_TO_START" else TASK_FAILED
                never_began = request_path(self.inbox, self.sent).exists()  # its stderr is an earlier attempt's
                told_why = not never_began and stderr.exists() and stderr.stat().st_size
                return Outcome(status, self.task.errcode, stderr if told_why else self.inbox / "trainer.err", never_began)
            if time.monotonic() > deadline:
                self.task.kill(self.kill_wait)
                return Outcome(WORKER_KILL_ON_TIMEOUT, None, stderr)
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))

    def retire(self) -> None:
        """Let the trainer finish: it exits at its next look at the inbox."""
        if not self.retired and not self.ended():
            write_json(request_path(self.inbox, self.sent + 1), {"stop": True})
        self.retired = True


_trainer: WarmTrainer | None = None  # this worker's, between sims
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
        _trainer = WarmTrainer(executor, run_dir, environment, trainings, node)
    return _trainer


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
