"""Tasks that fail on purpose, loaded through TASKGEN_PLUGINS, to test that every kind of
failure is recorded and the ensemble goes on. Each load is one attempt at a training, logged to
the file named by ``TASKGEN_FAULT_ATTEMPTS``, so a test can count the retries."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np

from simulators.tasks import digits

ATTEMPTS_ENV = "TASKGEN_FAULT_ATTEMPTS"


def record_attempt(fault: str) -> int:
    """Log one attempt of ``fault`` (one line, appended: trainers of other workers may write at the
    same time) and return how many it has had, this one included."""
    log = Path(os.environ[ATTEMPTS_ENV])
    with open(log, "a") as out:
        out.write(fault + "\n")
    return log.read_text().split().count(fault)


class FaultyDigits:
    """The digits task, except that loading it does ``fault`` first."""

    Options = digits.Options

    def __init__(self, fault: str):
        self.fault = fault

    @staticmethod
    def missing_files(data_dir):
        return []

    def load(self, options, data_dir=None):
        attempt = record_attempt(self.fault)
        if self.fault == "flaky" and attempt == 1:
            raise RuntimeError("injected failure, first attempt only")
        if self.fault == "raise":
            raise RuntimeError("injected failure")
        if self.fault == "exit":
            os._exit(7)
        if self.fault == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        if self.fault == "sleep":
            time.sleep(3600)
        data = digits.load(options, data_dir)
        if self.fault == "flaky":
            return data
        poisoned = data.x_train.copy()
        poisoned[0, 0, 0] = np.nan  # one NaN input makes the loss NaN: divergence
        return data.with_inputs(poisoned, data.x_val)


FAULTS = ("raise", "exit", "segfault", "sleep", "nan", "flaky")
RAISE, EXIT, SEGFAULT, SLEEP, NAN, FLAKY = (FaultyDigits(f) for f in FAULTS)
TASKS = {f"fault_{f}": f"tests.helpers.fault_tasks:{f.upper()}" for f in FAULTS}
