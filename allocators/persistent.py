"""Allocation: libEnsemble's persistent-generator allocator, plus live progress on the manager.

``only_persistent_gens`` already keeps every free worker busy and returns results to the
generator as they arrive (``async_return``); the manager calls the allocation function on
every pass, which makes it the one place that sees the whole history as it fills, so the
progress line is reported from here.
"""

from __future__ import annotations

import time

import numpy as np
from libensemble.alloc_funcs.start_only_persistent import only_persistent_gens


class ProgressReport:
    """Finished / total, running, failed and an ETA, printed at most every ``interval`` seconds."""

    def __init__(self, total: int, interval: float):
        self.total = total
        self.interval = interval
        self.started = time.monotonic()
        self._last_print = -float("inf")
        self._last_finished = -1

    def update(self, H: np.ndarray) -> None:
        now = time.monotonic()
        if now - self._last_print < self.interval:
            return
        finished = int(np.count_nonzero(H["sim_ended"]))
        if finished == self._last_finished and finished < self.total:
            return
        self._last_print, self._last_finished = now, finished
        print(self.line(H, now), flush=True)

    def line(self, H: np.ndarray, now: float) -> str:
        ended = H["sim_ended"]
        finished = int(np.count_nonzero(ended))
        running = int(np.count_nonzero(H["sim_started"] & ~ended))
        problems = {
            status: int(np.count_nonzero(ended & (H["status"] == status))) for status in ("failed", "diverged", "timeout")
        }
        elapsed = now - self.started
        eta = elapsed / finished * (self.total - finished) if finished else float("nan")
        problem_text = ", ".join(f"{count} {status}" for status, count in problems.items() if count)
        return (
            f"[{finished}/{self.total} trainings finished] {running} running"
            + (f", {problem_text}" if problem_text else "")
            + f", elapsed {_clock(elapsed)}, ETA {_clock(eta)}"
        )


def _clock(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "--"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def persistent_with_progress(W, H, sim_specs, gen_specs, alloc_specs, persis_info, libE_info):
    """``only_persistent_gens`` with a progress line (see module docstring)."""
    user = alloc_specs["user"]
    if "progress" not in persis_info:
        persis_info["progress"] = ProgressReport(user["total"], user["progress_interval"])
    persis_info["progress"].update(H)
    return only_persistent_gens(W, H, sim_specs, gen_specs, alloc_specs, persis_info, libE_info)
