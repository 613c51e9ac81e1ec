"""The history keeper answers signals in the manager only: processes forked from it (local
comms' workers) get back the handlers they had, so a signal ends them as it would have."""

from __future__ import annotations

import os
import signal

import numpy as np

from allocators.safekeeping import SAVE_SIGNALS, HistoryKeeper
from simulators.run_dir import RunDir


def handlers() -> dict[int, object]:
    return {number: signal.getsignal(number) for number in SAVE_SIGNALS}


def test_forked_processes_keep_their_own_signal_handlers(tmp_path):
    before = handlers()
    keeper = HistoryKeeper(RunDir(tmp_path), save_every=1)
    try:
        keeper.install_signal_handlers()
        assert all(handler == keeper._on_signal for handler in handlers().values())
        reading, writing = os.pipe()
        child = os.fork()
        if child == 0:  # a worker, as multiprocessing forks it
            os.write(writing, b"1" if handlers() == before else b"0")
            os._exit(0)
        os.waitpid(child, 0)
        assert os.read(reading, 1) == b"1"
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def test_the_keeper_saves_every_k_finished_trainings(tmp_path):
    run_dir = RunDir(tmp_path)
    keeper = HistoryKeeper(run_dir, save_every=2)
    H = np.zeros(3, dtype=[("sim_ended", bool)])
    keeper.update(H)
    assert not run_dir.history.exists()
    H["sim_ended"][:2] = True
    keeper.update(H)
    assert np.load(run_dir.history)["sim_ended"].sum() == 2
