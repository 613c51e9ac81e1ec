"""Jitted training of one or many Keras models of the same shape, on the JAX backend.

Keras' ``fit`` dispatches every batch from Python, which leaves a GPU idle for these small
recurrent models. Here the model's stateless API (``stateless_call``, the optimizer's
``stateless_apply``) makes one pure step, ``jax.vmap`` runs it for K members at once (stacked
weights and optimizer states; each member's learning rate lives in its optimizer state, each
shuffles with its own seed), and ``lax.scan`` runs a whole epoch's batches in one compiled
program with the data on the device. Python runs once per epoch, to copy each member's weights
back into its own model for the records and checkpoints. One training is the group of one, so
a member of a group computes what it would alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import keras
import numpy as np

from simulators.adjoint import group_adjoints
from simulators.engines import EpochCallback, Plan
from simulators.engines.member import Member
from simulators.engines.memory import GroupSize, device_budget, even_parts, members_that_fit, program_bytes
from simulators.models import loss_and_metrics, program_shape, update_rules
from simulators.records import ADJOINT_FIELDS
from simulators.tasks.base import TaskData


class JaxEngine:
    def train(self, model: keras.Model, data: TaskData, plan: Plan, on_epoch: EpochCallback) -> None:
        train_group([Member(model, plan, on_epoch)], data)


def _hits(objective: str, logits, y):
    """Correct predictions per sample (mean over output steps); zeros for regression."""
    import jax.numpy as jnp

    if objective == "classification":
        correct = jnp.argmax(logits, axis=-1) == y
    elif objective == "binary":
        correct = (logits[..., 0] > 0) == (y > 0)
    else:
        return jnp.zeros(y.shape[0])
    return correct.reshape(y.shape[0], -1).mean(axis=1)


def _require_jax() -> None:
    if keras.backend.backend() != "jax":
        raise RuntimeError(
            f"engine 'jax' needs the JAX backend, this process runs '{keras.backend.backend()}': "
            "set KERAS_BACKEND=jax, or use isolation: process (it sets it for the trainer)"
        )


PartDone = Callable[[list[Member], GroupSize, "Exception | None"], None]


def train_group(members: list[Member], data: TaskData, memory_margin: float = 0.2,
                finished: PartDone | None = None) -> GroupSize:
    """Train ``members`` (same architecture, shapes, batch size and epochs) together: as many at
    once as the device's memory holds (less ``memory_margin`` of it), else in even parts;
    members restored from checkpoints of different epochs share programs (``_train_part``).
    ``finished(part, size, error)`` hears of each part as it ends (its members' records
    can be written then) or fails (the next part still trains); without it a failure raises.
    Returns how many trained at once (the largest part), and what one member needs."""
    loss = prepare(members, data)
    fitting = fitting_group_size(members, data, loss, memory_margin)
    parts = even_parts(len(members), fitting.members)
    for indices in parts:
        part, part_size = [members[k] for k in indices], GroupSize(len(indices), fitting.member_mb)
        try:
            _train_part(part, data, loss)
        except Exception as error:
            if finished is None:
                raise
            finished(part, part_size, error)
            continue
        if finished is not None:
            finished(part, part_size, None)
    return GroupSize(len(parts[0]) if parts else 0, fitting.member_mb)


def prepare(members: list[Member], data: TaskData):
    """Compile each member's model with its own optimizer (so its checkpoints hold its state);
    returns the loss all share."""
    _require_jax()
    if len(members) > 1 and members[0].plan.schedule != "constant":
        raise ValueError("a vectorised group takes schedule: constant (a schedule holds one learning rate for all)")
    loss, metrics = loss_and_metrics(data)
    for member in members:
        optimizer = member.plan.optimizer(len(data.x_train), update_rules(member.model))
        member.model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
        member.model.optimizer.build(member.model.trainable_variables)
    return loss


def epoch_program(members: list[Member], data: TaskData, loss):
    """The jitted epoch of ``members`` (prepared) and the arguments it takes for their first epoch."""
    train_epoch, _ = _programs(members[0].model, loss, data.objective, members[0].plan.batch_size)
    return train_epoch, (*_state_and_keys(members), data.x_train, data.y_train)


def _state_and_keys(members: list[Member]):
    """The members' variables stacked as the programs take them, and each one's random key."""
    import jax
    import jax.numpy as jnp

    state = tuple(_stacked(members, variables_of) for variables_of in STATE_PARTS)
    return state, jnp.stack([jax.random.PRNGKey(member.plan.seed) for member in members])


def _train_part(members: list[Member], data: TaskData, loss) -> None:
    """Members restored from checkpoints of different epochs: those furthest behind train alone
    until they reach the next ones' epoch, then on together (one program per such phase). The
    part takes the epochs of its furthest-behind member, not their sum, and each member still
    trains as it would alone."""
    by_start: dict[int, list[Member]] = {}
    for member in members:
        by_start.setdefault(member.plan.resume(member.model), []).append(member)
    starts = sorted(by_start)
    training: list[Member] = []
    for start, until in zip(starts, [*starts[1:], members[0].plan.epochs]):
        training += by_start[start]
        if start < until:
            training = _train_from(training, start, until, data, loss)


def fitting_group_size(members: list[Member], data: TaskData, loss, memory_margin: float) -> GroupSize:
    """How many of ``members`` fit at once: XLA's memory analysis of the group's epoch program
    (compiled, not run: the compile its first epoch then reuses; once per shape in this process,
    later groups of the shape sized from it) against the device's budget; all of them where the
    device reports none or there is only one."""
    budget = device_budget(memory_margin) if len(members) > 1 else None
    if budget is None:
        return GroupSize(len(members))
    key = (program_shape(members[0].model, loss), members[0].plan.batch_size, data.x_train.shape, data.x_val.shape)
    if key not in _member_bytes:
        _member_bytes[key] = _sized_by_the_group_else_one(members, data, loss)
    if _member_bytes[key] is None:  # this device's compiler gives no memory analysis: nothing to size by
        return GroupSize(len(members))
    member, shared = _member_bytes[key]
    return GroupSize(members_that_fit(budget, member, shared, len(members)), member / 2**20)


_member_bytes: dict[tuple, tuple[int, int] | None] = {}  # a shape's (bytes per member, bytes shared by all)


def _sized_by_the_group_else_one(members: list[Member], data: TaskData, loss) -> tuple[int, int] | None:
    """The group's own program's analysis (its compile then serves the first epoch), or, where the
    device's compiler cannot build a program that large (XLA may run out of memory autotuning it),
    one member's, as groups were sized before: the parts that sizes then compile, or fail, as they
    would have."""
    import jax

    try:
        return _member_and_shared_bytes(members, data, loss)
    except jax.errors.JaxRuntimeError:
        return _member_and_shared_bytes(members[:1], data, loss)


def _member_and_shared_bytes(members: list[Member], data: TaskData, loss) -> tuple[int, int] | None:
    """What one member of the shape needs on the device (its share of the group's state and
    working memory) and what the members share (the data, once for all), from the group's own
    epoch program. Compiled ahead with the arguments' shapes, the program lands in JAX's cache of
    compiled programs, so the group's first epoch does not compile it again where it fits
    (sizing by a one-member program was a second compile per shape, in every trainer)."""
    import jax

    train_epoch, arguments = epoch_program(members, data, loss)
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), arguments)
    needs = program_bytes(train_epoch.lower(*abstract).compile())
    if needs is None:
        return None
    working, argument_bytes = needs
    state_bytes = sum(leaf.nbytes for leaf in jax.tree.leaves(arguments[0]))
    return ((working + state_bytes) // len(members),
            argument_bytes - state_bytes + data.x_val.nbytes + data.y_val.nbytes)


def _train_from(members: list[Member], start: int, stop: int, data: TaskData, loss) -> list[Member]:
    """Epochs ``start + 1 ... stop`` of members whose models and optimizers hold the state of
    ``start``; returns those that go on (the rest stopped: diverged, out of time). An epoch is
    recorded (weights into each model, records, checkpoints) while the device trains the next one,
    and validation's programs compile while it trains the first: the program's dispatch does not
    wait for it, so that host work takes no device time."""
    import jax
    import jax.numpy as jnp

    plan = members[0].plan
    train_epoch, evaluate = _programs(members[0].model, loss, data.objective, plan.batch_size)
    probe = group_adjoints(members[0].model, loss, data) if members[0].adjoints else None
    state, keys = _state_and_keys(members)
    x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    x_val, y_val = jnp.asarray(data.x_val), jnp.asarray(data.y_val)
    val_chunk = _validation_chunk(members[0].model, plan.batch_size)
    active, trained = set(range(len(members))), None
    for epoch in range(start + 1, stop + 1):
        started = time.perf_counter()
        state, train_totals = train_epoch(state, jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, epoch),
                                          x_train, y_train)
        if trained:
            _record(members, active, trained, data.objective)
            trained = None
        elif epoch == start + 1:
            _compile_validation(evaluate, probe, state, x_val, y_val, val_chunk)
        if not active:
            break
        train_totals = np.asarray(train_totals)  # waits for the epoch's training: its time apart from the rest
        fit_seconds = time.perf_counter() - started
        val_totals = _evaluate_in_chunks(evaluate, state, x_val, y_val, val_chunk)
        adjoints = probe(state[0], state[1]) if probe else None
        host_state = jax.device_get(state)  # one transfer, then each member's slice on the host
        trained = TrainedEpoch(epoch, np.concatenate([train_totals, val_totals], axis=1), adjoints, host_state,
                               time.perf_counter() - started, fit_seconds)
    if trained:
        _record(members, active, trained, data.objective)
    return [members[k] for k in sorted(active)]


class TrainedEpoch(NamedTuple):
    """An epoch of a group as the host holds it: per member (first axis) its totals (loss, hits;
    validation loss, hits), adjoint fields (or None) and state; its wall time and its training's."""

    number: int
    totals: np.ndarray
    adjoints: np.ndarray | None
    host_state: tuple
    seconds: float
    fit_seconds: float


def _record(members: list[Member], active: set[int], epoch: TrainedEpoch, objective: str) -> None:
    """Each active member's epoch: its weights back into its model, its record to its callback
    (which checkpoints); a member whose callback says stop leaves ``active`` (a diverged member
    is still computed, the program's shape being fixed, but not recorded)."""
    for k in sorted(active):
        member = members[k]
        _copy_back(member.model, [[values[k] for values in part] for part in epoch.host_state])
        record = _epoch_record(epoch.totals[k], objective, epoch.seconds, epoch.fit_seconds)
        if epoch.adjoints is not None and np.isfinite(record["loss"]):
            record |= dict(zip(ADJOINT_FIELDS, epoch.adjoints[k].tolist()))
        if not member.on_epoch(epoch.number, record):
            active.discard(k)


# What a member's state is made of, in the order the programs take it.
STATE_PARTS = (
    lambda model: model.trainable_variables,
    lambda model: model.non_trainable_variables,
    lambda model: model.optimizer.variables,
)


def _stacked(members: list[Member], variables_of) -> list:
    import jax.numpy as jnp

    return [jnp.stack(values) for values in zip(*([v.value for v in variables_of(m.model)] for m in members))]


def _epoch_record(totals: np.ndarray, objective: str, seconds: float, fit_seconds: float) -> dict[str, float]:
    """The epoch's metrics; ``seconds``: its whole wall time (the group's), ``fit_seconds``: its
    training program's (the first epoch's includes compiling it, unless sizing the group compiled
    it before, as where the device reports its memory, and compiling validation's programs where
    that took longer than the training; any epoch's, the recording of the one before where that
    took longer); the rest went to validation, adjoint probes and the weights' copy to the host."""
    loss, hits, val_loss, val_hits = (float(value) for value in totals)
    record = {"loss": loss, "val_loss": val_loss}
    if objective != "regression":
        record |= {"accuracy": hits, "val_accuracy": val_hits}
    return record | {"seconds": seconds, "fit_seconds": fit_seconds}


def _programs(template: keras.Model, loss, objective: str, batch_size: int):
    """The jitted epoch of K members and their evaluation (``_group_programs``), built once per
    shape in a process: a later group of the shape reuses them, neither traced nor compiled again
    (any template of the shape serves: the programs take every weight as an argument)."""
    baked_in = _baked_in(template.optimizer)
    if baked_in is None:  # a group of one with a schedule: its own rate baked in, no later group shares it
        return _group_programs(template, loss, objective, batch_size)
    key = (program_shape(template, loss), objective, batch_size, baked_in)
    if key not in _built_programs:
        _built_programs[key] = _group_programs(template, loss, objective, batch_size)
    return _built_programs[key]


_built_programs: dict[tuple, tuple] = {}


def _baked_in(optimizer: keras.optimizers.Optimizer) -> str | None:
    """What of ``optimizer`` a program holds as constants: its configuration and update rules but
    its name and a constant learning rate (a variable of its state, each member's own); None for a
    schedule (its rate is baked in)."""
    config = optimizer.get_config()
    config.pop("name", None)
    if not isinstance(config.pop("learning_rate", None), float):
        return None
    return repr((sorted(config.items()), sorted(getattr(optimizer, "rules", {}).items())))


def _group_programs(template: keras.Model, loss, objective: str, batch_size: int):
    """The jitted epoch of K members (vmapped, each its own shuffle) and their vmapped evaluation;
    ``template``'s optimizer serves all: each member's rate lives in its own optimizer state."""
    import jax
    import jax.numpy as jnp

    optimizer = template.optimizer

    def member_step(state, x, y):
        trainable, non_trainable, optimizer_state = state

        def batch_loss(trainable, non_trainable):
            logits, non_trainable = template.stateless_call(trainable, non_trainable, x, training=True)
            return loss(y, logits), (logits, non_trainable)

        (value, (logits, non_trainable)), grads = jax.value_and_grad(batch_loss, has_aux=True)(trainable,
                                                                                            non_trainable)
        trainable, optimizer_state = optimizer.stateless_apply(optimizer_state, grads, trainable)
        totals = jnp.stack([value * len(y), _hits(objective, logits, y).sum()])
        return (trainable, non_trainable, optimizer_state), totals

    group_step = jax.vmap(member_step)

    @jax.jit
    def train_epoch(state, keys, x, y):
        n = len(x)
        orders = jax.vmap(lambda key: jax.random.permutation(key, n))(keys)  # each member its own shuffle
        full = n // batch_size * batch_size
        batches = orders[:, :full].reshape(len(keys), full // batch_size, batch_size).transpose(1, 0, 2)

        def step(state, indices):  # indices (K, batch): gathered here, so memory stays one batch per member
            return group_step(state, x[indices], y[indices])

        state, totals = jax.lax.scan(step, state, batches)
        totals = totals.sum(axis=0)
        if full < n:  # the last, smaller batch: a second shape, compiled once
            state, last = group_step(state, x[orders[:, full:]], y[orders[:, full:]])
            totals = totals + last
        return state, totals / n

    def member_evaluate(state, x, y):
        trainable, non_trainable, _ = state
        logits, _ = template.stateless_call(trainable, non_trainable, x, training=False)
        return jnp.stack([loss(y, logits), _hits(objective, logits, y).mean()])

    return train_epoch, jax.jit(jax.vmap(member_evaluate, in_axes=(0, None, None)))


# Validation's chunk, in training batches, where the scan stores each step's intermediates for
# the backward pass: a forward pass of two batches then needs less than the training step of one
# the group was sized by (XLA's analysis on the CPU: 72-74% for gru and lstm at 784 steps, 120-127%
# under remat; tests/integration/test_vectorised.py checks it at small sizes), and a GPU
# step bound by its latency takes about as long for twice the rows (validation went from 4.1% to
# 3.3% of the workers' time on the H200 study slice). With remat a training step keeps only each
# step's state, and the fused kernel's memory was not measured: one batch there.
VALIDATION_BATCHES = 2


def _validation_chunk(template: keras.Model, batch_size: int) -> int:
    compute = template.get_layer("recurrent").compute
    stores_intermediates = compute.kernel == "scan" and not compute.remat
    return batch_size * (VALIDATION_BATCHES if stores_intermediates else 1)


def _evaluate_in_chunks(evaluate, state, x, y, chunk: int) -> np.ndarray:
    """Validation in chunks of ``chunk`` samples, at most two shapes. The chunks are dispatched
    back to back and summed on the device: one wait, not one a chunk."""
    totals = 0.0
    for start, size in _chunks(len(x), chunk):
        totals = totals + evaluate(state, x[start : start + size], y[start : start + size]) * size
    return np.asarray(totals) / len(x)


def _chunks(samples: int, chunk: int) -> list[tuple[int, int]]:
    """Validation's chunks of ``samples``: (start, size), ``chunk`` each but the last."""
    return [(start, min(chunk, samples - start)) for start in range(0, samples, chunk)]


def _compile_validation(evaluate, probe, state, x, y, chunk: int) -> None:
    """Validation's programs (each chunk shape's evaluation, the adjoint probe) compiled for the
    state's shapes, so their first call does not compile them with the device idle (about 4.5 s of
    a gru group's first epoch on the H200). ``state`` may still be in training: only its shapes
    count. Only a head start: where XLA cannot compile them beside the training program (out of
    memory autotuning), their first call compiles them, as it did before."""
    import jax

    try:
        for size in {size for _, size in _chunks(len(x), chunk)}:
            evaluate.lower(state, x[:size], y[:size]).compile()
        if probe is not None:
            probe.compile(state[0], state[1])
    except jax.errors.JaxRuntimeError:
        pass


def _copy_back(model: keras.Model, state) -> None:
    for variables_of, values in zip(STATE_PARTS, state):
        for variable, value in zip(variables_of(model), values):
            variable.assign(value)
