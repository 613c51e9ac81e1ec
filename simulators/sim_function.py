"""The libEnsemble sim function: train the point of each row it is given, return its results.

With ``isolation: process`` (the default) the training runs in the worker's trainer process,
started by libEnsemble's executor and kept warm between trainings (``trainer_client.py``), so a
crash, an out-of-memory kill or a timeout costs one training (or one vectorised group) and the
worker goes on; ``inline`` trains in the worker itself, for debugging. With ``group_size`` above 1
the rows of one call are a group of same-shape points that the JAX engine trains together.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

import numpy as np
from libensemble.message_numbers import TASK_FAILED_TO_START, WORKER_DONE, WORKER_KILL_ON_TIMEOUT

from simulators.inbox import TrainingRequest
from simulators.options import TrainingOptions, WorkerOptions
from simulators.placement import Allotment, allot, gpu_memory_environment
from simulators.records import RESULT_FIELDS, EpochHistory, Status, empty_result, read_json, write_json
from simulators.run_dir import RunDir, SimDir
from simulators.settings import SimSettings
from simulators.trainer_client import Outcome, WarmTrainer, retire_trainer, trainer_environment, trainer_for
from simulators.training import finished_result, train_points

STDERR_TAIL_CHARS = 200


def train_sim(H, persis_info, sim_specs, libE_info):
    """libEnsemble's sim function: the results of the rows' trainings, as rows of ``sim_specs["out"]``."""
    settings: SimSettings = sim_specs["user"]["settings"]
    allotment = worker_allotment(settings.worker)
    sim_dirs = [prepare_sim_dir(row, settings.run_dir, allotment) for row in H]
    # a group (group_size > 1) is one vectorised training; otherwise the rows train one by one
    indices = list(range(len(H)))
    units = [indices] if settings.worker.group_size > 1 else [[index] for index in indices]
    results: dict[int, dict[str, Any]] = {}
    for unit in units:
        results |= _with_retries(unit, sim_dirs, settings, libE_info, allotment)
    out = np.zeros(len(H), dtype=sim_specs["out"])
    for index, sim_dir in enumerate(sim_dirs):
        results[index]["sim_dir"] = settings.run_dir.relative(sim_dir)
        for name in RESULT_FIELDS:
            out[index][name] = results[index][name]
    return out, persis_info, WORKER_DONE


def prepare_sim_dir(row: np.void, run_dir: RunDir, allotment: Allotment | None) -> SimDir:
    """The row's sim dir with its point record (written once, here: the trainer reads it) and
    the resources it was given. The row holds exactly the point fields (``sim_specs["in"]``)."""
    point = dict(zip(row.dtype.names, row.item()))
    sim_dir = run_dir.sim(point["identifier"]).make()
    write_json(sim_dir.point, point)
    if allotment is not None:
        write_json(sim_dir.placement, allotment.as_record())
    return sim_dir


def _with_retries(unit: list[int], sim_dirs: list[SimDir], settings: SimSettings, libE_info: dict,
                  allotment: Allotment | None) -> dict[int, dict[str, Any]]:
    """Results of the sim dirs at ``unit``; failed ones (not diverged) train again, up to
    ``retries`` times, each on its own: a group that crashed (out of memory, say) would crash again."""
    results: dict[int, dict[str, Any]] = {}
    attempts = [unit]
    for _ in range(1 + settings.worker.retries):
        for attempt in attempts:
            trained = _attempt([sim_dirs[i] for i in attempt], settings, libE_info, allotment)
            results |= dict(zip(attempt, trained))
        attempts = [[i] for i in unit if results[i]["status"] == Status.FAILED]
        if not attempts:
            break
    return results


def worker_allotment(worker: WorkerOptions) -> Allotment | None:
    """This worker's GPUs and threads, when libEnsemble's resource manager is on."""
    from libensemble.resources.resources import Resources

    if Resources.resources is None or Resources.resources.worker_resources.slots_on_node is None:
        return None
    return allot(Resources.resources.worker_resources, Resources.resources.glob_resources.gpus_avail_per_node,
                 worker.gpus_per_sim, worker.sims_per_gpu)


def _attempt(sim_dirs: list[SimDir], settings: SimSettings, libE_info: dict,
             allotment: Allotment | None) -> list[dict[str, Any]]:
    """One attempt at the trainings of ``sim_dirs``, with the worker's GPUs and threads: in the
    worker itself (``inline``) or in its trainer process."""
    options, environment = settings.training, gpu_memory_environment(None)
    if allotment is not None:
        environment = allotment.environment(settings.gpu_env)
        options = options.model_copy(update={"threads": options.threads or allotment.threads})
    if settings.worker.isolation == "inline":
        os.environ.update(environment)
        return train_points(sim_dirs, options)
    environment |= trainer_environment(options.threads, options.engine)

    def trainer() -> WarmTrainer:
        return trainer_for(libE_info["executor"], settings.run_dir, environment, settings.worker.trainings_per_process,
                           allotment.node if allotment else None)

    return _in_trainer(sim_dirs, options, settings.worker.timeout, trainer)


def _in_trainer(sim_dirs: list[SimDir], options: TrainingOptions, timeout: float,
                trainer: Callable[[], WarmTrainer]) -> list[dict[str, Any]]:
    """The worker's trainer trains the point, or the whole group (its output in the first
    member's sim dir); a member it left without a result gets the crash or the timeout."""
    for sim_dir in sim_dirs:
        if finished_result(sim_dir) is None:
            sim_dir.result.unlink(missing_ok=True)  # an earlier failed attempt's must not pass for this one's
    lead = sim_dirs[0]
    if len(sim_dirs) > 1:
        write_json(lead.group, [str(sim_dir.path) for sim_dir in sim_dirs])
    else:
        lead.group.unlink(missing_ok=True)  # a retry on its own: no longer a group's lead
    request = TrainingRequest(sim_dirs=[sim_dir.path for sim_dir in sim_dirs], options=options,
                              stdout=lead.stdout, stderr=lead.stderr)
    for _ in range(2):  # a trainer that had ended (idle, or killed while idle) never began it: once more
        outcome = trainer().run(request, timeout)
        if outcome.calc_status != WORKER_DONE:
            retire_trainer()
        if not outcome.never_began:
            break
    if len(outcome.results) == len(sim_dirs):
        return list(outcome.results)
    return [_recorded_or_lost(sim_dir, outcome, timeout) for sim_dir in sim_dirs]


def _recorded_or_lost(sim_dir: SimDir, outcome: Outcome, timeout: float) -> dict[str, Any]:
    if sim_dir.result.exists():  # the trainer recorded its own outcome, failure included
        return read_json(sim_dir.result)
    result = _partial_result(sim_dir)
    if outcome.calc_status == WORKER_KILL_ON_TIMEOUT:
        result.update(status=Status.TIMEOUT, error=f"killed after the sim timeout of {timeout} s")
    else:
        result.update(status=Status.FAILED, error=_crash_message(outcome))
    write_json(sim_dir.result, result)
    return result


def _partial_result(sim_dir: SimDir) -> dict[str, Any]:
    """What a training that never finished still tells: its completed epochs."""
    history = EpochHistory.load(sim_dir.history)
    return empty_result(**history.summary(), sim_dir=str(sim_dir.path))


def _crash_message(outcome: Outcome) -> str:
    code = outcome.code
    if outcome.calc_status == TASK_FAILED_TO_START:
        how = "failed to start"
    elif code is not None and code < 0:
        how = f"killed by {signal.Signals(-code).name}"
    else:
        how = f"exited with code {code}"
    stderr = outcome.stderr.read_text(errors="replace") if outcome.stderr.exists() else ""
    tail = stderr.strip().splitlines()[-1:] if stderr.strip() else []
    return f"trainer {how}" + (f": {tail[0][-STDERR_TAIL_CHARS:]}" if tail else "")
