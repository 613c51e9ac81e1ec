"""Keeping what the manager knows safe: periodic atomic saves of the history, a save on
SIGTERM / SIGINT / SIGUSR1 (the scheduler's warning), and a clean end when a worker dies.

The manager passes its live history to the allocation function on every pass; the keeper
holds the latest view, so whatever ends the run, ``history.npy`` holds every finished training.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from pathlib import Path

import numpy as np
import psutil

from ensembles.ownership import release_held
from ensembles.run_dir import save_history

SAVE_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
LOST_WORKER_EXIT = 3


class HistoryKeeper:
    def __init__(self, run_dir: Path, save_every: int):
        self.run_dir = Path(run_dir)
        self.save_every = save_every
        self.H: np.ndarray | None = None
        self._saved_at = 0
        self._workers = [p for p in multiprocessing.active_children() if p.is_alive()]
        for number in SAVE_SIGNALS:
            signal.signal(number, self._on_signal)

    def update(self, H: np.ndarray) -> None:
        self.H = H
        finished = int(np.count_nonzero(H["sim_ended"]))
        if finished - self._saved_at >= self.save_every:
            save_history(self.run_dir, H)
            self._saved_at = finished
        self._check_workers()

    def save(self) -> None:
        if self.H is not None:
            save_history(self.run_dir, self.H)

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
        finished = int(np.count_nonzero(self.H["sim_ended"])) if self.H is not None else 0
        print(
            f"taskgen: {reason}; history with {finished} finished trainings saved to "
            f"{self.run_dir / 'history.npy'}. Continue with: python run_ensemble.py --resume {self.run_dir}",
            file=sys.stderr,
            flush=True,
        )
        end_everything(exit_code)


def end_everything(exit_code: int) -> None:
    """Stop this process's children (workers, trainings) now, then exit: a manager told to stop
    (the scheduler's grace period is short), or a worker whose manager is gone."""
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
