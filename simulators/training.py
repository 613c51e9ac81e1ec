"""Train the points recorded in sim dirs and write their records; the same code runs in a
worker (inline), in a trainer process and on its own (``python -m simulators.train``).

One path serves one training and a vectorised group: each training is a ``Unit`` (its point,
sim dir and learning curve); the units of a call share the task, and one engine trains them.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulators import tracking
from simulators.options import TrainingOptions
from simulators.records import FINISHED, EpochHistory, Status, empty_result, read_json, write_json
from simulators.run_dir import SimDir
from simulators.tasks import disk_cache, task_module
from simulators.tasks.base import TaskData
from simulators.tasks.corruptions import corrupt_task
from simulators.tasks.transforms import apply_variation

if TYPE_CHECKING:
    from simulators.engines.member import Member
    from simulators.engines.memory import GroupSize

ERROR_CHARS = 250
# What must be equal for points to train in one vectorised program (the JAX engine's shapes).
SHAPE_FIELDS = ("architecture", "dataset", "permute", "pad", "orientation", "corruption", "val_corruption",
                "hidden_dim", "batch_size", "epochs")


def shape_of(point: dict[str, Any]) -> tuple:
    from hypers.fields import value_of  # not at module level: hypers imports simulators (names, tasks)

    return tuple(value_of(point, name) for name in SHAPE_FIELDS)


@dataclass
class Unit:
    """One training: where it is recorded, its point, its learning curve so far, its outcome
    (status, error, parameters) once it has one, and its experiment tracker, if any."""

    sim_dir: SimDir
    history: EpochHistory
    point: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    tracker: tracking.WandbTracker | None = None
    result: dict[str, Any] | None = None  # written: a later failure of its group cannot lose it


def train_points(sim_dirs: list[SimDir], options: TrainingOptions) -> list[dict[str, Any]]:
    """Train the point recorded in each sim dir, several (of one shape) vectorised together, and
    write each one's history and result; return the results in order.

    Never raises: a failing training is a result with status ``failed`` and its error text (the
    traceback in the sim dir's error file), so the ensemble goes on. A training that already
    completed is not run again; one that was cut short resumes from its checkpoint. Where the
    engine is not the JAX one (``auto`` off JAX), several points train one after the other.
    """
    if len(sim_dirs) > 1 and not _vectorised(options):
        return [result for sim_dir in sim_dirs for result in train_points([sim_dir], options)]
    started = time.perf_counter()
    done = {index: result for index, sim_dir in enumerate(sim_dirs) if (result := finished_result(sim_dir.make()))}
    units = {index: _begin(sim_dir, options) for index, sim_dir in enumerate(sim_dirs) if index not in done}
    starting = [unit for unit in units.values() if unit.outcome is None]
    if starting:
        _run_units(starting, options, started)
    return [done[index] if index in done else units[index].result or _finish(units[index], started)
            for index in range(len(sim_dirs))]


def _vectorised(options: TrainingOptions) -> bool:
    from simulators.engines import resolve

    return resolve(options.engine) == "jax"


def _begin(sim_dir: SimDir, options: TrainingOptions) -> Unit:
    """The unit of ``sim_dir``: its point, the learning curve so far (a promoted asha training's
    parent's, the first time) and its tracker; a unit that cannot begin has its failure as outcome."""
    unit = Unit(sim_dir, EpochHistory(sim_dir.history))
    try:
        unit.point = read_json(sim_dir.point)
        if unit.point.get("resume_from"):
            adopt_parent(sim_dir, sim_dir.sibling(unit.point["resume_from"]))
        unit.history = EpochHistory.load(sim_dir.history)
        unit.tracker = tracking.start(options.tracking, unit.point, sim_dir)
    except Exception as error:  # noqa: BLE001 - any failure is recorded, not raised
        unit.outcome = _failure(error, sim_dir)
    return unit


def _run_units(units: list[Unit], options: TrainingOptions, started: float) -> None:
    """Train the units on one task, each recorded as soon as its part of the group ends; a member
    that cannot be built fails alone, a failure of the task is every remaining unit's."""
    try:
        if len({shape_of(unit.point) for unit in units}) > 1:
            raise ValueError("a vectorised group's points must share architecture, task variant, sizes and epochs")
        data = load_task(units[0].point, options)  # before the backend starts: a task that cannot load costs no import
        configure_backend(int(units[0].point["seed"]), options.threads, options.task_cache)
        members, unit_of = [], {}
        for unit in units:
            try:
                member = _member(unit, options, data)
            except Exception as error:  # noqa: BLE001 - e.g. its model cannot be built: this unit alone fails
                unit.outcome = _failure(error, unit.sim_dir)
                continue
            members.append(member)
            unit_of[id(member)] = unit

        def finished(part: list[Member], size: GroupSize, error: Exception | None) -> None:
            for member in part:
                unit = unit_of[id(member)]
                unit.outcome = _failure(error, unit.sim_dir) if error else \
                    _outcome(member, unit.history, data) | size.as_record()
                unit.result = _finish(unit, started)

        _run_engine(members, data, options, finished)
    except Exception as error:  # noqa: BLE001 - the task or the program failed: every unit without an outcome
        for unit in units:
            if unit.outcome is None:
                unit.outcome = _failure(error, unit.sim_dir)


def _run_engine(members: list[Member], data: TaskData, options: TrainingOptions, finished) -> None:
    """Train the members, telling ``finished`` of each part as it ends: on the JAX engine as one
    vectorised group (one training is the group of one), else one by one with the options' engine."""
    from simulators.engines.memory import GroupSize

    if _vectorised(options):
        from simulators.engines.jax_step import train_group

        train_group(members, data, options.memory_margin, finished)
        return
    from simulators.engines import engine

    for member in members:
        engine(options.engine).train(member.model, data, member.plan, member.on_epoch)
        finished([member], GroupSize(1), None)


def configure_backend(seed: int, threads: int | None, task_cache: Path | None = None) -> None:
    """Seed every generator and, once per process, cap the backend's threads; on JAX keep compiled
    programs on disk beside the prepared tasks, so a group of a shape compiled once by any trainer
    on the node (or an earlier run) starts without compiling again."""
    import keras

    if threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if keras.backend.backend() == "jax":
        _keep_compiled_programs((task_cache or disk_cache.default_cache_dir()) / "jax")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if threads and tf.config.threading.get_intra_op_parallelism_threads() != threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
            except RuntimeError:  # already initialised in this process: keep its setting
                pass
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)


def _keep_compiled_programs(directory: Path) -> None:
    """JAX's persistent compilation cache in ``directory``, unless the user chose one
    (JAX_COMPILATION_CACHE_DIR)."""
    import jax

    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", str(directory))


@functools.lru_cache(maxsize=2)
def _cached_task(dataset: str, options_json: str, data_dir: str | None, variation: tuple, task_cache: str | None):
    """In memory for the process that trains many points (a warm trainer, an inline worker); on
    disk (``disk_cache``) for the node's other processes, which would otherwise prepare it again.
    ``variation``: permute, pad, orientation, corruption, val_corruption and the corruption seed."""
    module = task_module(dataset)
    directory = Path(data_dir) if data_dir else None
    permute, pad, orientation, corruption, val_corruption, corruption_seed = variation

    def build() -> TaskData:
        data = module.load(module.Options.model_validate_json(options_json), directory)
        data = corrupt_task(data, getattr(module, "image_shape", None), corruption, val_corruption, corruption_seed)
        return apply_variation(data, permute, pad, orientation)

    name = disk_cache.entry_name(dataset, module, options_json, directory, variation)
    return disk_cache.cached((Path(task_cache) if task_cache else disk_cache.default_cache_dir()) / name, build)


def load_task(point: dict[str, Any], options: TrainingOptions) -> TaskData:
    """The point's task variant; cached, so the trainings of one task on a node load it once."""
    from hypers.fields import value_of  # not at module level: hypers imports simulators (names, tasks)

    variation = (bool(point["permute"]), int(point["pad"]), str(point["orientation"]), value_of(point, "corruption"),
                 value_of(point, "val_corruption"), options.corruption_seed)
    return _cached_task(
        point["dataset"],
        options.task_options(point["dataset"]).model_dump_json(),
        str(options.data_dir) if options.data_dir else None,
        variation,
        str(options.task_cache) if options.task_cache else None,
    )


def _member(unit: Unit, options: TrainingOptions, data: TaskData) -> Member:
    """The unit's model, plan and per-epoch recording (adjoints, TensorBoard, checkpoints)."""
    from simulators.adjoint import epoch_adjoints
    from simulators.checkpoints import restore_checkpoint, save_checkpoint
    from simulators.engines import Plan
    from simulators.engines.member import Member
    from simulators.models import build_model, loss_and_metrics

    point, sim_dir, history, tracker = unit.point, unit.sim_dir, unit.history, unit.tracker
    model = build_model(point["architecture"], int(point["hidden_dim"]), int(point["seed"]), data,
                        options.architecture_options(point["architecture"]), options.compute)
    loss, _ = loss_and_metrics(data)

    def resume(compiled: Any) -> int:
        epoch = restore_checkpoint(sim_dir.checkpoint, compiled)
        history.truncate(epoch)
        return epoch

    board = _tensorboard(model, sim_dir) if options.tensorboard else None

    def on_epoch(epoch: int, metrics: dict[str, float]) -> bool:
        probed = "initial_adjoint" in metrics  # the engine probed the whole group at once
        if options.adjoints and not probed and math.isfinite(metrics.get("loss", math.nan)):
            metrics.update(epoch_adjoints(model, loss, data))
        keep_going = history.record(epoch, metrics)
        if tracker:
            tracker.log(epoch, metrics)
        if board:
            board.on_epoch_end(epoch - 1, dict(metrics))
        # the last epoch is always kept: adaptive search continues promoted trainings from it
        due = options.checkpoint_every and epoch % options.checkpoint_every == 0
        if keep_going and (due or epoch == int(point["epochs"])):
            save_checkpoint(sim_dir.checkpoint, model, epoch)
        return keep_going

    plan = Plan(
        epochs=int(point["epochs"]),
        batch_size=int(point["batch_size"]),
        learning_rate=float(point["learning_rate"]),
        seed=int(point["seed"]),
        clipnorm=options.clipnorm,
        schedule=options.schedule,
        warmup_epochs=options.warmup_epochs,
        resume=resume,
    )
    return Member(model, plan, on_epoch, adjoints=options.adjoints)


def _outcome(member: Member, history: EpochHistory, data: TaskData) -> dict[str, Any]:
    """How it ended, and the corruptions its data was prepared with (the validation set's: held out or not)."""
    return {"n_params": member.model.count_params(), "status": Status.DIVERGED if history.diverged else Status.OK,
            "corruption": data.corruption, "val_corruption": data.val_corruption}


def _tensorboard(model: Any, sim_dir: SimDir) -> Any:
    """Keras' TensorBoard callback, fed by us so that every engine logs the same scalars."""
    import keras

    board = keras.callbacks.TensorBoard(log_dir=str(sim_dir.tensorboard), write_graph=False)
    board.set_model(model)
    return board


def finished_result(sim_dir: SimDir) -> dict[str, Any] | None:
    """The result of a training that already completed in this sim dir (ok or diverged), if any."""
    if sim_dir.result.exists():
        result = read_json(sim_dir.result)
        if result.get("status") in FINISHED:
            return result
    return None


def adopt_parent(sim_dir: SimDir, parent: SimDir) -> None:
    """Start a promoted training from its parent's last checkpoint and learning curve (once:
    a checkpoint of its own, from an interrupted attempt, is further along)."""
    if sim_dir.checkpoint.exists():
        return
    if not parent.checkpoint.exists():
        raise FileNotFoundError(f"resume_from: {parent.path} has no {parent.checkpoint.name} to continue from")
    write_json(sim_dir.history, EpochHistory.load(parent.history).epochs)
    shutil.copyfile(parent.checkpoint, sim_dir.checkpoint)


def _failure(error: Exception, sim_dir: SimDir) -> dict[str, Any]:
    sim_dir.error.write_text(traceback.format_exc())
    return {"status": Status.FAILED, "error": f"{type(error).__name__}: {error}"[:ERROR_CHARS]}


def _finish(unit: Unit, started: float) -> dict[str, Any]:
    """Write the unit's result: its last epoch's metrics and its outcome; ``train_seconds`` is the
    time since ``started`` (a group's wall time for each member)."""
    result = empty_result(**unit.history.summary(), **unit.outcome)
    result["train_seconds"] = time.perf_counter() - started
    result["sim_dir"] = str(unit.sim_dir.path)
    write_json(unit.sim_dir.result, result)
    if unit.tracker:
        unit.tracker.finish(result)
    return result
