"""Workers end with their manager: once the manager that owns the run is gone (killed by any
signal, or its node lost), no worker keeps training or writing into the run directory.

Each worker runs a thread that watches its manager and, once it is gone, stops the worker's
children (its trainer, which would otherwise notice its worker's end only at its own next look,
``simulators/trainer_server.py: exit_with_worker``) and exits. How it watches:

- On the manager's host (local comms: libEnsemble forks every worker from the manager) it checks
  the manager's process every ``SAME_HOST_POLL_SECONDS``: a dead pid is certain.
- On another host (MPI comms) it reads the run's lock (``ensembles/ownership.py``) every
  heartbeat: a manager whose heartbeat has not moved for ``STALE_AFTER_SECONDS``, or whose lock
  another manager took over, is gone.

Under MPI, mpich's Hydra launcher does the same on its own, faster: when rank 0 dies by SIGKILL,
mpiexec kills every other rank (SIGKILL, with their process groups) within about 2 s, and when
mpiexec itself is killed its proxies end their ranks just as fast (measured with mpich 5.0.2's
Hydra, ``tests/integration/test_orphans.py``). Trainers started through the MPIExecutor run in a
session of their own, which that kill does not reach: they leave when they see their worker gone.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path

from allocators.safekeeping import end_everything
from ensembles.ownership import HEARTBEAT_SECONDS, STALE_AFTER_SECONDS, LockRecord, RunLocked, read_lock

SAME_HOST_POLL_SECONDS = 2.0
ORPHANED_EXIT = 5


class ManagerWatch:
    """Whether the manager holding ``record`` (the lock on ``lock_path``) is gone, seen from here."""

    def __init__(self, record: LockRecord, lock_path: Path, silence: float = STALE_AFTER_SECONDS):
        self.record = record
        self.lock_path = Path(lock_path)
        self.silence = silence
        self.same_host = record.process_alive() is not None
        self.poll_seconds = SAME_HOST_POLL_SECONDS if self.same_host else HEARTBEAT_SECONDS
        self._beats, self._heard = record.beats, time.monotonic()

    def gone(self) -> str | None:
        """Why the manager is gone; None while it runs."""
        if self.same_host:
            return None if self.record.process_alive() else f"its process ended on {self.record.host}"
        with contextlib.suppress(RunLocked, OSError):  # an unreadable lock is a silent one
            current = read_lock(self.lock_path)
            if current is not None and current.token != self.record.token:
                return f"another manager took the run over ({current.describe()})"
            if current is not None and current.beats != self._beats:
                self._beats, self._heard = current.beats, time.monotonic()
        silent = time.monotonic() - self._heard
        return f"no heartbeat for {silent:.0f} s" if silent > self.silence else None


def watch_manager(record: LockRecord, lock_path: Path) -> None:
    """Start this worker's watch of its manager (a daemon thread)."""
    watch = ManagerWatch(record, lock_path)

    def run() -> None:
        while (reason := watch.gone()) is None:
            time.sleep(watch.poll_seconds)
        with contextlib.suppress(OSError):  # the manager's stderr may be gone with it
            print(f"taskgen: worker pid {os.getpid()}: its manager (pid {record.pid} on {record.host}) is gone: "
                  f"{reason}; stopping its trainings and exiting", file=sys.stderr, flush=True)
        end_everything(ORPHANED_EXIT)

    threading.Thread(target=run, daemon=True, name="watch-manager").start()


_forked_by: tuple[LockRecord, Path] | None = None  # the manager whose forked workers watch it


def watch_from_forked_workers(record: LockRecord, lock_path: Path) -> None:
    """Local comms: every worker libEnsemble forks from this manager from now on watches it from
    its first instant, before it waits for any work (a worker blocked on its queue would
    otherwise wait forever for a dead manager). The history keeper's own at-fork hook, which gives
    the worker back its signal handlers (``allocators/safekeeping.py``), runs beside this one."""
    global _forked_by
    if multiprocessing.get_start_method() != "fork":  # spawn, forkserver: no at-fork hook runs in the workers
        print(f"taskgen: warning: workers start by {multiprocessing.get_start_method()}, not fork: they cannot "
              "watch their manager, and would outlive it if it were killed", file=sys.stderr)
    if _forked_by is None:
        os.register_at_fork(after_in_child=_watch_if_forked_by_manager)
    _forked_by = (record, Path(lock_path))


def _watch_if_forked_by_manager() -> None:
    # Only the manager's own children: a worker's forks (a trainer's pre-exec child) inherit this hook
    if _forked_by is not None and os.getppid() == _forked_by[0].pid:
        watch_manager(*_forked_by)
