"""Allocation: libEnsemble's persistent-generator allocator, plus what the manager must do
while the history fills.

``only_persistent_gens`` already keeps every free worker busy and returns results to the
generator as they arrive (``async_return``). The manager calls the allocation function on
every pass with the live history, which makes it the one place to update the manager's
watchers: the progress line and the history keeper (``allocators.safekeeping``). They are made
where the run starts and handed in as ``alloc_specs["user"]["watchers"]``.
"""

from __future__ import annotations

from libensemble.alloc_funcs.start_only_persistent import only_persistent_gens


def persistent_with_progress(W, H, sim_specs, gen_specs, alloc_specs, persis_info, libE_info):
    for watcher in alloc_specs["user"].get("watchers", ()):
        watcher.update(H)
    return only_persistent_gens(W, H, sim_specs, gen_specs, alloc_specs, persis_info, libE_info)
