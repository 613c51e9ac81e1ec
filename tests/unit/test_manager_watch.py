"""Workers end with their manager (ensembles/orphans.py): a worker's watch sees its manager gone
by its pid on the same host and by its heartbeat elsewhere, and a worker forked from the manager
starts watching it while it gets back its own signal handlers (two at-fork hooks, one fork)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import ensembles.orphans as orphans
from allocators.safekeeping import SAVE_SIGNALS, HistoryKeeper
from ensembles.orphans import ManagerWatch, watch_from_forked_workers
from ensembles.ownership import LockRecord, acquire
from simulators.run_dir import RunDir


def test_a_worker_sees_its_manager_gone_by_its_pid_here_and_by_its_heartbeat_elsewhere(tmp_path):
    lock = RunDir(tmp_path).lock
    here = LockRecord.for_this_process()
    assert ManagerWatch(here, lock).gone() is None
    ended = subprocess.Popen(["true"])
    ended.wait()
    assert ManagerWatch(here.model_copy(update={"pid": ended.pid}), lock).gone() == f"its process ended on {here.host}"

    elsewhere = here.model_copy(update={"host": "another-node"})
    lock.write_text(elsewhere.model_dump_json())
    watch = ManagerWatch(elsewhere, lock, silence=1.0)
    for beat in range(3):  # a manager that beats is not gone, however long it runs
        time.sleep(0.5)
        lock.write_text(elsewhere.model_copy(update={"beats": beat + 1}).model_dump_json())
        assert watch.gone() is None
    time.sleep(1.2)
    assert watch.gone().startswith("no heartbeat for 1 s")
    lock.write_text(elsewhere.model_copy(update={"token": "a-new-manager"}).model_dump_json())
    assert watch.gone().startswith("another manager took the run over (host another-node")


def test_a_forked_worker_watches_its_manager_and_keeps_its_own_signal_handlers(tmp_path, monkeypatch):
    monkeypatch.setattr(orphans, "_forked_by", None)  # this test's manager only
    before = {number: signal.getsignal(number) for number in SAVE_SIGNALS}
    run_dir = RunDir(tmp_path)
    lock = acquire(run_dir)
    try:
        watch_from_forked_workers(lock.record, run_dir.lock)  # as run_ensemble's prepare does, then run():
        HistoryKeeper(run_dir, save_every=1).install_signal_handlers()
        reading, writing = os.pipe()
        child = os.fork()
        if child == 0:  # a worker, as multiprocessing forks it
            watching = any(thread.name == "watch-manager" for thread in threading.enumerate())
            handlers = {number: signal.getsignal(number) for number in SAVE_SIGNALS}
            os.write(writing, bytes([watching, handlers == before]))
            os._exit(0)
        os.waitpid(child, 0)
        assert os.read(reading, 2) == bytes([True, True])
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)
        lock.release()
