"""The libEnsemble sim function: train the point of each row it is given, return its results.

With ``isolation: process`` (the default) the training runs as its own process started by
libEnsemble's executor, so a crash, an out-of-memory kill or a timeout costs one training and
the worker goes on; ``inline`` trains in the worker itself, for debugging.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
from libensemble.message_numbers import TASK_FAILED, WORKER_DONE, WORKER_KILL_ON_TIMEOUT

from generators.points import from_row
from simulators.placement import Allotment, allot
from simulators.records import RESULT_FIELDS, empty_result, read_json, write_json
from simulators.training import EpochHistory, finished_result

SIMS_DIR = "sims"
TRAINER_APP = "trainer"
TRAINER_SCRIPT = Path(__file__).with_name("train.py")
PROJECT_ROOT = TRAINER_SCRIPT.parent.parent
STDERR_TAIL_CHARS = 200
# libEnsemble's MPIExecutor starts the trainer on the node of the worker's resource set
LAUNCH_ONE_PROCESS = {"MPIExecutor": {"num_procs": 1, "num_nodes": 1}}


def train_sim(H, persis_info, sim_specs, libE_info):
    user = sim_specs["user"]
    run_dir = Path(user["run_dir"])
    out = np.zeros(len(H), dtype=sim_specs["out"])
    allotment = worker_allotment(user)
    for index, row in enumerate(H):
        point = from_row(row)
        sim_dir = run_dir / SIMS_DIR / point["identifier"]
        sim_dir.mkdir(parents=True, exist_ok=True)
        if allotment is not None:
            write_json(sim_dir / "placement.json", allotment.as_record())
        for _ in range(1 + user["retries"]):
            result = _train(point, user, sim_dir, libE_info, allotment)
            if result["status"] != "failed":
                break
        result["sim_dir"] = str(sim_dir.relative_to(run_dir))
        for name in RESULT_FIELDS:
            out[index][name] = result[name]
    return out, persis_info, WORKER_DONE


def worker_allotment(user: dict[str, Any]) -> Allotment | None:
    """This worker's GPUs and threads, when libEnsemble's resource manager is on."""
    from libensemble.resources.resources import Resources

    if Resources.resources is None or Resources.resources.worker_resources.slots_on_node is None:
        return None
    return allot(
        Resources.resources.worker_resources,
        Resources.resources.glob_resources.gpus_avail_per_node,
        user["gpus_per_sim"],
        user["sims_per_gpu"],
    )


def _train(point, user: dict[str, Any], sim_dir: Path, libE_info: dict, allotment: Allotment | None) -> dict[str, Any]:
    training = dict(user["training"])
    if allotment is not None:
        os.environ.update(allotment.environment(user["gpu_env"]))  # inline: this process; else inherited
        training["threads"] = training.get("threads") or allotment.threads
    if user["isolation"] == "inline":
        return _train_inline(point, training, sim_dir)
    return _train_in_process(point, {**user, "training": training}, sim_dir, libE_info["executor"])


def _train_inline(point: dict[str, Any], training: dict[str, Any], sim_dir: Path) -> dict[str, Any]:
    from simulators.options import TrainingOptions
    from simulators.training import run_training

    return run_training(point, TrainingOptions.model_validate(training), sim_dir)


def trainer_environment(threads: int | None, engine: str = "fit") -> dict[str, str]:
    """What the trainer process needs on top of the worker's environment."""
    environment = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TASKGEN_WORKER_PID": str(os.getpid()),  # the trainer exits if its worker dies
    }
    if threads:
        environment["OMP_NUM_THREADS"] = str(threads)
    if engine == "jax":  # several trainers may share a GPU: allocate as needed, not 75% up front
        environment |= {"KERAS_BACKEND": "jax", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    return environment


def _train_in_process(point: dict[str, Any], user: dict[str, Any], sim_dir: Path, executor) -> dict[str, Any]:
    sim_dir.mkdir(parents=True, exist_ok=True)
    result_file = sim_dir / "result.json"
    if finished_result(sim_dir) is None:
        result_file.unlink(missing_ok=True)  # an earlier failed attempt's result must not pass for this one's
    write_json(sim_dir / "point.json", point)
    write_json(sim_dir / "options.json", user["training"])
    os.environ.update(trainer_environment(user["training"].get("threads"), user["training"].get("engine", "fit")))
    task = executor.submit(
        **LAUNCH_ONE_PROCESS.get(type(executor).__name__, {}),
        app_name=TRAINER_APP,
        app_args=f"--point {sim_dir / 'point.json'} --options {sim_dir / 'options.json'} --out {sim_dir}",
        stdout=str(sim_dir / "train.out"),
        stderr=str(sim_dir / "train.err"),
    )
    calc_status = executor.polling_loop(task, timeout=user["timeout"], delay=0.2)
    if result_file.exists():  # the trainer recorded its own outcome, failure included
        return read_json(result_file)
    result = _partial_result(sim_dir)
    if calc_status == WORKER_KILL_ON_TIMEOUT:
        result.update(status="timeout", error=f"killed after the sim timeout of {user['timeout']} s")
    else:
        result.update(status="failed", error=_crash_message(task, sim_dir, calc_status))
    write_json(result_file, result)
    return result


def _partial_result(sim_dir: Path) -> dict[str, Any]:
    """What a training that never finished still tells: its completed epochs."""
    history = EpochHistory.load(sim_dir / "history.json")
    return empty_result(**history.summary(), sim_dir=str(sim_dir))


def _crash_message(task, sim_dir: Path, calc_status: int) -> str:
    code = task.errcode
    if code is not None and code < 0:
        how = f"killed by {signal.Signals(-code).name}"
    elif calc_status == TASK_FAILED:
        how = f"exited with code {code}"
    else:
        how = f"ended in state {task.state}"
    stderr = (sim_dir / "train.err").read_text(errors="replace") if (sim_dir / "train.err").exists() else ""
    tail = stderr.strip().splitlines()[-1:] if stderr.strip() else []
    return f"trainer {how}" + (f": {tail[0][-STDERR_TAIL_CHARS:]}" if tail else "")
