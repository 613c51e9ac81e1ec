"""Keeping what the manager knows safe: periodic atomic saves of the history, a save on
SIGTERM / SIGINT / SIGUSR1 (the scheduler's warning), and a clean end when a worker dies.

The manager passes its live history to the allocation function on every pass; the keeper
holds the latest view, so whatever ends the run, the saved history holds every finished training.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from typing import Any

import numpy as np
import psutil

from simulators.run_dir import RunDir

SAVE_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
LOST_WORKER_EXIT = 3


class HistoryKeeper:
    def __init__(self, run_dir: RunDir, save_every: int):
        self.run_dir = run_dir
        self.save_every = save_every
        self.H: np.ndarray | None = None
        self._saved_at = 0
        self._workers: list[multiprocessing.Process] | None = None  # local comms' workers, seen on the first pass
        self._previous_handlers: dict[int, Any] = {}

    def install_signal_handlers(self) -> None:
        """Save and stop on ``SAVE_SIGNALS`` in this process, the manager's, where the run starts.
        Processes forked from it (local comms' workers) get back the handlers they had before:
        they never save, and a signal ends them as it would have."""
        self._previous_handlers = {number: signal.signal(number, self._on_signal) for number in SAVE_SIGNALS}
        os.register_at_fork(after_in_child=self._restore_signal_handlers)

    def _restore_signal_handlers(self) -> None:
        for number, handler in self._previous_handlers.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        self._previous_handlers = {}

    def update(self, H: np.ndarray) -> None:
        if self._workers is None:  # the first pass: the workers run by now
            self._workers = [p for p in multiprocessing.active_children() if p.is_alive()]
        self.H = H
        finished = int(np.count_nonzero(H["sim_ended"]))
        if finished - self._saved_at >= self.save_every:
            self.run_dir.save_history(H)
            self._saved_at = finished
        self._check_workers()

    def save(self) -> None:
        if self.H is not None:
            self.run_dir.save_history(self.H)

    def _check_workers(self) -> None:
        """With local comms a dead worker would leave the manager waiting forever: end the run."""
        lost = [p for p in self._workers if not p.is_alive()]
        if lost:
            names = ", ".join(f"{p.name} (pid {p.pid}, exit code {p.exitcode})" for p in lost)
            self._stop(f"lost worker {names}", LOST_WORKER_EXIT)

    def _on_signal(self, number: int, frame) -> None:
        self._stop(f"received {signal.Signals(number).name}", 128 + number)

    def _stop(self, reason: str, exit_code: int) -> None:
        self.save()
        if self.H is None:  # stopped before the manager's first pass
            saved = "nothing trained yet"
        else:
            finished = int(np.count_nonzero(self.H["sim_ended"]))
            saved = f"history with {finished} finished trainings saved to {self.run_dir.history}"
        print(f"taskgen: {reason}; {saved}. Continue with: python run_ensemble.py --resume {self.run_dir.path}",
              file=sys.stderr, flush=True)
        end_everything(exit_code)


def end_everything(exit_code: int) -> None:
    """Stop this process's children (workers, trainings) now, then exit: a manager told to stop
    (the scheduler's grace period is short), or a worker whose manager is gone."""
    from ensembles.ownership import release_held  # here, not above: ensembles imports allocators

    children = psutil.Process().children(recursive=True)
    for child in children:
        child.terminate()
    _, alive = psutil.wait_procs(children, timeout=5)
    for child in alive:
        child.kill()
    release_held()  # a manager's lock, once nothing of its run writes (os._exit skips run_ensemble's release)
    if "mpi4py.MPI" in sys.modules:
        sys.modules["mpi4py.MPI"].COMM_WORLD.Abort(exit_code)
    os._exit(exit_code)
