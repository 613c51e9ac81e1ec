"""The libEnsemble sim function: train the point of each row it is given, return its results.

With ``isolation: process`` (the default) the training runs in the worker's trainer process,
started by libEnsemble's executor and kept warm between trainings (``simulators/warm_trainer.py``),
so a crash, an out-of-memory kill or a timeout costs one training (or one vectorised group) and
the worker goes on; ``inline`` trains in the worker itself, for debugging. With ``group_size``
above 1 the rows of one call are a group of same-shape points that the JAX engine trains
together in one program.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from libensemble.message_numbers import TASK_FAILED_TO_START, WORKER_DONE, WORKER_KILL_ON_TIMEOUT

from simulators.placement import Allotment, allot
from simulators.records import RESULT_FIELDS, Status, empty_result, read_json, write_json
from simulators.options import TrainingOptions, WorkerOptions
from simulators.run_dir import SimDir
from simulators.settings import SimSettings
from simulators.training import EpochHistory, finished_result
from simulators.warm_trainer import Outcome, WarmTrainer, retire_trainer, trainer_for

TRAINER_SCRIPT = Path(__file__).with_name("train.py")
PROJECT_ROOT = TRAINER_SCRIPT.parent.parent
STDERR_TAIL_CHARS = 200
GPU_MEMORY_ON_DEMAND = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}


def train_sim(H, persis_info, sim_specs, libE_info):
    settings: SimSettings = sim_specs["user"]["settings"]
    run_dir = settings.run_dir
    points = [dict(zip(H.dtype.names, row.item())) for row in H]
    sim_dirs = [run_dir.sim(point["identifier"]).make() for point in points]
    allotment = worker_allotment(settings.worker)
    for sim_dir in sim_dirs:
        if allotment is not None:
            write_json(sim_dir.placement, allotment.as_record())
    # a group (group_size > 1) is one vectorised training; otherwise the rows train one by one
    units = [list(range(len(points)))] if settings.worker.group_size > 1 else [[index] for index in range(len(points))]
    results: dict[int, dict[str, Any]] = {}
    for unit in units:
        results |= _train_with_retries(unit, points, sim_dirs, settings, libE_info, allotment)
    out = np.zeros(len(H), dtype=sim_specs["out"])
    for index, sim_dir in enumerate(sim_dirs):
        results[index]["sim_dir"] = run_dir.relative(sim_dir)
        for name in RESULT_FIELDS:
            out[index][name] = results[index][name]
    return out, persis_info, WORKER_DONE


def _train_with_retries(unit: list[int], points, sim_dirs, settings, libE_info, allotment) -> dict[int, dict[str, Any]]:
    """Results of the points at ``unit``; failed ones (not diverged) train again, up to ``retries``
    times, each on its own: a group that crashed (out of memory, say) would crash again."""
    results: dict[int, dict[str, Any]] = {}
    attempts = [unit]
    for _ in range(1 + settings.worker.retries):
        for attempt in attempts:
            trained = _train([points[i] for i in attempt], settings, [sim_dirs[i] for i in attempt], libE_info,
                             allotment)
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
    return allot(
        Resources.resources.worker_resources,
        Resources.resources.glob_resources.gpus_avail_per_node,
        worker.gpus_per_sim,
        worker.sims_per_gpu,
    )


def _train(points: list[dict[str, Any]], settings: SimSettings, sim_dirs: list[SimDir], libE_info: dict,
           allotment: Allotment | None) -> list[dict[str, Any]]:
    options, environment = settings.training, {}
    if allotment is not None:
        environment = allotment.environment(settings.gpu_env)
        options = options.model_copy(update={"threads": options.threads or allotment.threads})
    if settings.worker.isolation == "inline":
        os.environ.update(environment)
        return _train_inline(points, options, sim_dirs)
    environment |= trainer_environment(options.threads, options.engine)

    def trainer() -> WarmTrainer:
        return trainer_for(libE_info["executor"], settings.run_dir, environment, settings.worker.trainings_per_process,
                           allotment.node if allotment else None)

    return _train_in_process(points, options, settings.worker.timeout, sim_dirs, trainer)


def _train_inline(points: list[dict[str, Any]], options: TrainingOptions, sim_dirs: list[SimDir]) -> list[dict[str, Any]]:
    from simulators.training import run_training, run_training_group

    if len(points) == 1:
        return [run_training(points[0], options, sim_dirs[0])]
    return run_training_group(points, options, sim_dirs)


def trainer_environment(threads: int | None, engine: str = "fit") -> dict[str, str]:
    """What the trainer process needs on top of the worker's environment."""
    others = [path for path in os.environ.get("PYTHONPATH", "").split(os.pathsep) if path and path != str(PROJECT_ROOT)]
    environment = {
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), *others]),  # the same on every call: no restarts
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TASKGEN_WORKER_PID": str(os.getpid()),  # the trainer exits if its worker dies
        "TASKGEN_WORKER_HOST": socket.gethostname(),
    }
    # several trainers may share a GPU: each allocates as it needs, not 75% (JAX) or all (TF) up front
    for name, default in GPU_MEMORY_ON_DEMAND.items():
        environment[name] = os.environ.get(name, default)  # a user's own setting wins
    if threads:
        environment["OMP_NUM_THREADS"] = str(threads)
    if engine == "jax":
        environment["KERAS_BACKEND"] = "jax"
    return environment


def _train_in_process(points: list[dict[str, Any]], options: TrainingOptions, timeout: float, sim_dirs: list[SimDir],
                      trainer: Callable[[], WarmTrainer]) -> list[dict[str, Any]]:
    """The worker's trainer trains the point, or the whole group (its output in the first
    member's sim dir); a member it left without a result gets the crash or the timeout."""
    for point, sim_dir in zip(points, sim_dirs):
        if finished_result(sim_dir) is None:
            sim_dir.result.unlink(missing_ok=True)  # an earlier failed attempt's must not pass for this one's
        write_json(sim_dir.point, point)
    lead = sim_dirs[0]
    options_file = lead.path / "options.json"
    write_json(options_file, options.model_dump(mode="json"))
    if len(points) > 1:
        write_json(lead.group, [str(sim_dir.path) for sim_dir in sim_dirs])
        inputs = ["--group", str(lead.group)]
    else:
        lead.group.unlink(missing_ok=True)  # a retry on its own: no longer a group's lead
        inputs = ["--point", str(lead.point), "--out", str(lead.path)]
    for _ in range(2):  # a trainer that had ended (idle, or killed while idle) never began it: once more
        outcome = trainer().run([*inputs, "--options", str(options_file)], lead.stdout, lead.stderr, timeout)
        if outcome.calc_status != WORKER_DONE:
            retire_trainer()
        if not outcome.never_began:
            break
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
