"""Train one point and write its records; the same code runs inline or in its own process."""

from __future__ import annotations

import functools
import math
import os
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

from hypers.fields import value_of
from simulators import tracking
from simulators.options import TrainingOptions
from simulators.records import ADJOINT_FIELDS
from simulators.records import empty_result, read_json, write_json
from simulators.tasks import disk_cache, task_module
from simulators.tasks.base import TaskData
from simulators.tasks.corruptions import corrupt_task
from simulators.tasks.transforms import apply_variation

ERROR_CHARS = 250
LAST_EPOCH_FIELDS = ("loss", "accuracy", "val_loss", "val_accuracy", *ADJOINT_FIELDS)


class EpochHistory:
    """Per-epoch metrics, rewritten to ``history.json`` after every epoch so a killed training
    still leaves its learning curve."""

    def __init__(self, path: Path, epochs: list[dict[str, Any]] | None = None):
        self.path = path
        self.epochs: list[dict[str, Any]] = epochs or []
        self.tracker: tracking.WandbTracker | None = None  # a copy of every epoch for experiment tracking

    @classmethod
    def load(cls, path: Path) -> EpochHistory:
        """The epochs a (possibly killed) training wrote so far."""
        return cls(path, read_json(path) if path.exists() else [])

    def record(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Store the epoch; False (stop training) when the loss is no longer finite."""
        self.epochs.append({"epoch": epoch, **metrics})
        write_json(self.path, self.epochs)
        if self.tracker:
            self.tracker.log(epoch, metrics)
        return math.isfinite(metrics.get("loss", math.nan))

    def truncate(self, epochs: int) -> None:
        """Forget epochs after a restored checkpoint: they will be trained again."""
        self.epochs = self.epochs[:epochs]
        write_json(self.path, self.epochs)

    @property
    def diverged(self) -> bool:
        return any(not math.isfinite(epoch.get("loss", math.nan)) for epoch in self.epochs)

    def summary(self) -> dict[str, Any]:
        if not self.epochs:
            return {}
        last = self.epochs[-1]
        val_accuracies = [e["val_accuracy"] for e in self.epochs if math.isfinite(e.get("val_accuracy", math.nan))]
        summary = {name: last[name] for name in LAST_EPOCH_FIELDS if name in last}
        summary["best_val_accuracy"] = max(val_accuracies, default=math.nan)
        summary["epochs_completed"] = len(self.epochs)
        return summary


def configure_backend(seed: int, threads: int | None) -> None:
    """Seed every generator and, once per process, cap the backend's threads."""
    import keras

    if threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
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
    variation = (bool(point["permute"]), int(point["pad"]), str(point["orientation"]), value_of(point, "corruption"),
                 value_of(point, "val_corruption"), options.corruption_seed)
    return _cached_task(
        point["dataset"],
        options.task_options(point["dataset"]).model_dump_json(),
        str(options.data_dir) if options.data_dir else None,
        variation,
        str(options.task_cache) if options.task_cache else None,
    )


def _member(point: dict[str, Any], options: TrainingOptions, sim_dir: Path, history: EpochHistory, data: TaskData):
    """The point's model, plan and per-epoch recording (adjoints, TensorBoard, checkpoints)."""
    from simulators.adjoint import epoch_adjoints
    from simulators.checkpoints import restore_checkpoint, save_checkpoint
    from simulators.engines import Plan
    from simulators.engines.member import Member
    from simulators.models import build_model, loss_and_metrics

    model = build_model(
        point["architecture"], int(point["hidden_dim"]), int(point["seed"]), data,
        options.architecture_options(point["architecture"]),
    )
    loss, _ = loss_and_metrics(data)

    def resume(compiled: Any) -> int:
        epoch = restore_checkpoint(sim_dir, compiled)
        history.truncate(epoch)
        return epoch

    board = _tensorboard(model, sim_dir) if options.tensorboard else None

    def on_epoch(epoch: int, metrics: dict[str, float]) -> bool:
        if options.adjoints and math.isfinite(metrics.get("loss", math.nan)):
            metrics.update(epoch_adjoints(model, loss, data))
        keep_going = history.record(epoch, metrics)
        if board:
            board.on_epoch_end(epoch - 1, dict(metrics))
        # the last epoch is always kept: adaptive search continues promoted trainings from it
        due = options.checkpoint_every and epoch % options.checkpoint_every == 0
        if keep_going and (due or epoch == int(point["epochs"])):
            save_checkpoint(sim_dir, model, epoch)
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
    return Member(model, plan, on_epoch)


def _outcome(member: Any, history: EpochHistory, data: TaskData) -> dict[str, Any]:
    """How it ended, and the corruptions its data was prepared with (the validation set's: held out or not)."""
    return {"n_params": member.model.count_params(), "status": "diverged" if history.diverged else "ok",
            "corruption": data.corruption, "val_corruption": data.val_corruption}


def _train(point: dict[str, Any], options: TrainingOptions, sim_dir: Path, history: EpochHistory) -> dict[str, Any]:
    data = load_task(point, options)  # before the backend starts: a task that cannot load costs no import
    configure_backend(int(point["seed"]), options.threads)
    from simulators.engines import engine

    member = _member(point, options, sim_dir, history, data)
    engine(options.engine).train(member.model, data, member.plan, member.on_epoch)
    return _outcome(member, history, data)


def _train_group(indices: list[int], points: list[dict[str, Any]], options: TrainingOptions, sim_dirs: list[Path],
                 histories: dict[int, EpochHistory]) -> dict[int, dict[str, Any]]:
    data = load_task(points[indices[0]], options)
    configure_backend(int(points[indices[0]]["seed"]), options.threads)
    from simulators.engines.jax_step import train_group

    members, outcomes = {}, {}
    for index in indices:
        try:
            members[index] = _member(points[index], options, sim_dirs[index], histories[index], data)
        except Exception as error:  # noqa: BLE001 - e.g. its model cannot be built: this member alone fails
            outcomes[index] = _failure(error, sim_dirs[index])
    try:
        train_group(list(members.values()), data)
        outcomes |= {index: _outcome(member, histories[index], data) for index, member in members.items()}
    except Exception as error:  # noqa: BLE001 - the group's program failed: every member's record
        outcomes |= {index: _failure(error, sim_dirs[index]) for index in members}
    return outcomes


def _tensorboard(model: Any, sim_dir: Path) -> Any:
    """Keras' TensorBoard callback, fed by us so that every engine logs the same scalars."""
    import keras

    board = keras.callbacks.TensorBoard(log_dir=str(sim_dir / "tensorboard"), write_graph=False)
    board.set_model(model)
    return board


def finished_result(sim_dir: Path) -> dict[str, Any] | None:
    """The result of a training that already completed in this sim dir (ok or diverged), if any."""
    path = sim_dir / "result.json"
    if path.exists():
        result = read_json(path)
        if result.get("status") in ("ok", "diverged"):
            return result
    return None


def adopt_parent(sim_dir: Path, parent_dir: Path) -> None:
    """Start a promoted training from its parent's last checkpoint and learning curve (once:
    a checkpoint of its own, from an interrupted attempt, is further along)."""
    from simulators.checkpoints import CHECKPOINT_FILE

    if (sim_dir / CHECKPOINT_FILE).exists():
        return
    if not (parent_dir / CHECKPOINT_FILE).exists():
        raise FileNotFoundError(f"resume_from: {parent_dir} has no {CHECKPOINT_FILE} to continue from")
    write_json(sim_dir / "history.json", EpochHistory.load(parent_dir / "history.json").epochs)
    shutil.copyfile(parent_dir / CHECKPOINT_FILE, sim_dir / CHECKPOINT_FILE)


def _begin(point: dict[str, Any], sim_dir: Path, options: TrainingOptions) -> EpochHistory:
    """The sim dir ready for ``point``: its point.json, the learning curve so far, its tracker."""
    write_json(sim_dir / "point.json", point)
    if point.get("resume_from"):
        adopt_parent(sim_dir, sim_dir.parent / point["resume_from"])
    history = EpochHistory.load(sim_dir / "history.json")
    history.tracker = tracking.start(options.tracking, point, sim_dir)
    return history


def _failure(error: Exception, sim_dir: Path) -> dict[str, Any]:
    (sim_dir / "error.txt").write_text(traceback.format_exc())
    return {"status": "failed", "error": f"{type(error).__name__}: {error}"[:ERROR_CHARS]}


def _finish(history: EpochHistory, outcome: dict[str, Any], sim_dir: Path, started: float) -> dict[str, Any]:
    result = empty_result(**history.summary(), **outcome)
    result["train_seconds"] = time.perf_counter() - started
    result["sim_dir"] = str(sim_dir)
    write_json(sim_dir / "result.json", result)
    if history.tracker:
        history.tracker.finish(result)
    return result


def run_training(point: dict[str, Any], options: TrainingOptions, sim_dir: Path) -> dict[str, Any]:
    """Train ``point`` and write point.json, history.json and result.json into ``sim_dir``.

    Never raises: a failing training is a result with status ``failed`` and its error text
    (the traceback goes to ``error.txt``), so the ensemble goes on. A training that already
    completed here is not run again; one that was cut short resumes from its checkpoint.
    """
    sim_dir.mkdir(parents=True, exist_ok=True)
    done = finished_result(sim_dir)
    if done is not None:
        return done
    history = EpochHistory(sim_dir / "history.json")
    started = time.perf_counter()
    try:
        history = _begin(point, sim_dir, options)
        outcome = _train(point, options, sim_dir, history)
    except Exception as error:  # noqa: BLE001 - any failure is recorded, not raised
        outcome = _failure(error, sim_dir)
    return _finish(history, outcome, sim_dir, started)


def run_training_group(points: list[dict[str, Any]], options: TrainingOptions, sim_dirs: list[Path]) -> list[dict[str, Any]]:
    """Train points of one shape together, vectorised by the JAX engine, each with the records
    ``run_training`` would write for it alone (``train_seconds`` is the group's wall time).
    Finished members are skipped; a member that cannot start records its own failure, and a
    failure of the group's program is every running member's. Where ``auto`` resolves to
    ``fit`` (Keras not on JAX), the points train one after the other."""
    from generators.grouping import shape_of
    from simulators.engines import resolve

    if resolve(options.engine) != "jax":
        return [run_training(point, options, sim_dir) for point, sim_dir in zip(points, sim_dirs)]
    if len({shape_of(point) for point in points}) > 1:
        raise ValueError("a vectorised group's points must share architecture, task variant, sizes and epochs")
    started = time.perf_counter()
    results: dict[int, dict[str, Any]] = {}
    histories: dict[int, EpochHistory] = {}
    outcomes: dict[int, dict[str, Any]] = {}
    for index, (point, sim_dir) in enumerate(zip(points, sim_dirs)):
        sim_dir.mkdir(parents=True, exist_ok=True)
        done = finished_result(sim_dir)
        if done is not None:
            results[index] = done
            continue
        histories[index] = EpochHistory(sim_dir / "history.json")
        try:
            histories[index] = _begin(point, sim_dir, options)
        except Exception as error:  # noqa: BLE001 - this member's failure, not the group's
            outcomes[index] = _failure(error, sim_dir)
    starting = [index for index in histories if index not in outcomes]
    if starting:
        try:
            outcomes |= _train_group(starting, points, options, sim_dirs, histories)
        except Exception as error:  # noqa: BLE001 - the task could not load: every member's record
            outcomes |= {index: _failure(error, sim_dirs[index]) for index in starting}
    for index, history in histories.items():
        results[index] = _finish(history, outcomes[index], sim_dirs[index], started)
    return [results[index] for index in range(len(points))]
