"""Allocation: libEnsemble's persistent-generator allocator, plus what the manager must do
while the history fills.

``only_persistent_gens`` already keeps every free worker busy and returns results to the
generator as they arrive (``async_return``). The manager calls the allocation function on
every pass with the live history, which makes it the one place to report progress and keep
the history safe (see ``allocators.safekeeping``). Both are made on the first call, when the
workers already run (so they inherit no signal handlers), and kept here, not in
``persis_info``, which libEnsemble pickles.
"""

from __future__ import annotations

from pathlib import Path

from libensemble.alloc_funcs.start_only_persistent import only_persistent_gens

from allocators.progress import ProgressReport
from allocators.safekeeping import HistoryKeeper
from simulators.run_dir import RunDir

_watchers: dict[str, tuple[ProgressReport, HistoryKeeper]] = {}


def keeper_of(run_dir) -> HistoryKeeper | None:
    """The history keeper of the run in ``run_dir`` in this (manager) process, once started."""
    watcher = _watchers.get(str(run_dir))
    return watcher[1] if watcher else None


def persistent_with_progress(W, H, sim_specs, gen_specs, alloc_specs, persis_info, libE_info):
    user = alloc_specs["user"]
    key = str(user["run_dir"])
    if key not in _watchers:
        _watchers[key] = (
            ProgressReport(user["total"], user["progress_interval"], user["already_finished"]),
            HistoryKeeper(RunDir(Path(user["run_dir"])), user["save_every"]),
        )
    progress, keeper = _watchers[key]
    progress.update(H)
    keeper.update(H)
    return only_persistent_gens(W, H, sim_specs, gen_specs, alloc_specs, persis_info, libE_info)
