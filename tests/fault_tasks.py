"""Tasks that fail on purpose, loaded through TASKGEN_PLUGINS, to test that every kind of
failure is recorded and the ensemble goes on."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from simulators.tasks import digits


class FaultyDigits:
    """The digits task, except that loading it does ``fault`` first."""

    Options = digits.Options

    def __init__(self, fault: str):
        self.fault = fault

    @staticmethod
    def missing_files(data_dir):
        return []

    def load(self, options, data_dir=None):
        if self.fault == "raise":
            raise RuntimeError("injected failure")
        if self.fault == "exit":
            os._exit(7)
        if self.fault == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        if self.fault == "sleep":
            time.sleep(3600)
        data = digits.load(options, data_dir)
        poisoned = data.x_train.copy()
        poisoned[0, 0, 0] = np.nan  # one NaN input makes the loss NaN: divergence
        return data.with_inputs(poisoned, data.x_val)


RAISE, EXIT, SEGFAULT, SLEEP, NAN = (FaultyDigits(f) for f in ("raise", "exit", "segfault", "sleep", "nan"))
TASKS = {f"fault_{f}": f"tests.fault_tasks:{f.upper()}" for f in ("raise", "exit", "segfault", "sleep", "nan")}
