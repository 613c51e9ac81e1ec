"""The manager's progress line: trainings finished of the total, running, problems, ETA."""

from __future__ import annotations

import time

import numpy as np

from simulators.records import Status

# How a training can end that the progress line reports, in this order.
PROBLEMS = (Status.FAILED, Status.DIVERGED, Status.TIMEOUT)


class ProgressReport:
    """Finished / total, running, failed and an ETA, printed at most every ``interval`` seconds."""

    def __init__(self, total: int | None, interval: float, already_finished: int = 0):
        self.total = total
        self.interval = interval
        self.already_finished = already_finished  # by earlier runs of a resumed study
        self.started = time.monotonic()
        self._last_print = -float("inf")
        self._last_finished = -1

    def update(self, H: np.ndarray) -> None:
        now = time.monotonic()
        if now - self._last_print < self.interval:
            return
        finished = int(np.count_nonzero(H["sim_ended"]))
        if finished == self._last_finished and finished != self.total:
            return
        self._last_print, self._last_finished = now, finished
        print(self.line(H, now), flush=True)

    def line(self, H: np.ndarray, now: float) -> str:
        ended = H["sim_ended"]
        finished = int(np.count_nonzero(ended))
        running = int(np.count_nonzero(H["sim_started"] & ~ended))
        problems = {
            status: int(np.count_nonzero(ended & (H["status"] == status))) for status in PROBLEMS
        }
        elapsed = now - self.started
        finished_here = finished - self.already_finished
        problem_text = ", ".join(f"{count} {status}" for status, count in problems.items() if count)
        if self.total is None:  # adaptive search: the total depends on the results
            head, eta_text = f"[{finished} trainings finished]", ""
        else:
            eta = elapsed / finished_here * (self.total - finished) if finished_here > 0 else float("nan")
            head, eta_text = f"[{finished}/{self.total} trainings finished]", f", ETA {_clock(eta)}"
        return (
            f"{head} {running} running"
            + (f", {problem_text}" if problem_text else "")
            + f", elapsed {_clock(elapsed)}{eta_text}"
        )


def _clock(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "--"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"
