"""Vectorised trainings on the JAX engine: a member of a group computes what it would alone,
and a diverging member is recorded without disturbing the others. The scripts run in the tests'
warm JAX process (``on_jax``, tests/helpers/jax_scripts.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.runs import run_command

pytest.importorskip("jax")

GROUP_VS_ALONE = """
import json, tempfile
from pathlib import Path
from generators.points import make_point
from hypers.fields import defaults
from simulators.options import TrainingOptions
from simulators.run_dir import SimDir
from tests.helpers.training import train_point, train_together

options = TrainingOptions(engine="jax", tasks={"digits": {"train_samples": 200}})
points = [make_point({**defaults(), "architecture": "gru", "dataset": "digits", "hidden_dim": 8, "epochs": 2,
                      "learning_rate": rate}, replicate=replicate, spec_seed=5)
          for rate, replicate in ((1e-2, 0), (1e-2, 1), (3e-3, 0), (1e38, 0))]  # the last overflows]
root = Path(tempfile.mkdtemp())
alone = [train_point(p, options, root / "alone" / p["identifier"]) for p in points[:3]]
together = train_together(points, options, [root / "group" / p["identifier"] for p in points])
curves = [json.loads(SimDir(root / "group" / p["identifier"]).history.read_text()) for p in points]
# a member checkpointed after epoch 1 (the same point stopped there) and a fresh one: the fresh one
# trains epoch 1 alone, then both train epoch 2 in one program
first, second = root / "mixed" / "first", root / "mixed" / "second"
train_point({**points[0], "epochs": 1}, options, first)
SimDir(first).result.unlink()
stopped_curve = json.loads(SimDir(first).history.read_text())
mixed = train_together(points[:2], options, [first, second])
mixed_curve = json.loads(SimDir(first).history.read_text())
fresh_curve = json.loads(SimDir(second).history.read_text())
# a member that cannot start (its parent checkpoint is gone) fails alone
orphan = {**points[2], "resume_from": "no-such-parent"}
cannot_start = train_together([points[0], orphan], options, [root / "start" / "a", root / "start" / "b"])
print(json.dumps({"alone": alone, "together": together, "curves": curves, "mixed": mixed,
                  "stopped_curve": stopped_curve, "mixed_curve": mixed_curve, "fresh_curve": fresh_curve,
                  "cannot_start": cannot_start}))
"""


def test_group_members_match_training_alone_and_divergence_is_isolated(on_jax):
    out = on_jax(GROUP_VS_ALONE)
    for alone, together in zip(out["alone"], out["together"][:3]):
        assert together["status"] == alone["status"] == "ok", together["error"]
        for name in ("loss", "val_loss", "val_accuracy", "terminal_adjoint"):
            assert together[name] == pytest.approx(alone[name], rel=1e-4, abs=1e-6), name
        assert together["epochs_completed"] == 2
    diverged = out["together"][3]
    assert diverged["status"] == "diverged" and diverged["epochs_completed"] == 1  # stopped, others went on
    assert len(out["curves"][3]) == 1 and all(len(curve) == 2 for curve in out["curves"][:3])
    for alone, resumed in zip(out["alone"][:2], out["mixed"]):  # resumed at epoch 1, or fresh: as alone
        assert resumed["status"] == "ok" and resumed["epochs_completed"] == 2
        assert resumed["val_loss"] == pytest.approx(alone["val_loss"], rel=1e-4, abs=1e-6)
    assert [epoch["epoch"] for epoch in out["mixed_curve"]] == [1, 2]
    assert out["mixed_curve"][0] == out["stopped_curve"][0]  # epoch 1 kept (its timing too), not trained again
    assert out["mixed_curve"][1]["seconds"] == out["fresh_curve"][1]["seconds"]  # epoch 2: one program for both
    started, orphan = out["cannot_start"]
    assert started["status"] == "ok" and started["val_loss"] == pytest.approx(out["alone"][0]["val_loss"], rel=1e-4)
    assert orphan["status"] == "failed" and "no-such-parent" in orphan["error"]


def test_grouped_ensemble_trains_each_group_in_one_trainer_with_every_point_recorded(write_spec, tmp_path):
    import numpy as np

    spec_path = write_spec(
        space={"choices": {"architecture": ["rnn", "gru"], "dataset": ["digits"], "hidden_dim": [8],
                           "learning_rate": [1e-2, 3e-3]}, "replicates": 2},
        simulator={"isolation": "process", "engine": "jax", "group_size": 3},
    )
    run_dir = tmp_path / "run"
    result = run_command(["python", "run_ensemble.py", "--spec", str(spec_path), "--nworkers", "2",
                          "--out", str(run_dir)],
                         env={"KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-3000:]
    H = np.load(run_dir / "history.npy")
    assert len(H) == 8 and len(set(H["identifier"])) == 8 and (H["status"] == "ok").all(), H[["status", "error"]]
    assert np.isfinite(H["val_loss"]).all() and (H["epochs_completed"] == 1).all()
    # per architecture 4 points: a group of 3 (one trainer, vectorised) and one alone
    groups = [json.loads(path.read_text()) for path in (run_dir / "sims").glob("*/group.json")]
    assert sorted(len(group) for group in groups) == [3, 3]
    for group in groups:
        points = [json.loads((Path(sim_dir) / "point.json").read_text()) for sim_dir in group]
        assert len({point["architecture"] for point in points}) == 1
        assert len((Path(group[0]) / "train.out").read_text().splitlines()) == 3  # one line per member
    sims = {(row["sim_worker"], row["sim_started_time"]) for row in H}
    assert len(sims) == 4  # libEnsemble sent each group to one worker as one sim




PROMOTED_FROM_TWO_PARENTS = """
import json, shutil, tempfile
from pathlib import Path
from generators.points import make_point
from hypers.fields import defaults
from simulators.options import TrainingOptions
from tests.helpers.training import train_point, train_together

options = TrainingOptions(engine="jax", tasks={"digits": {"train_samples": 200}})
root = Path(tempfile.mkdtemp())
configurations = [{**defaults(), "architecture": "gru", "dataset": "digits", "hidden_dim": 8, "learning_rate": rate}
                  for rate in (1e-2, 3e-3)]
parents = [make_point({**c, "epochs": 1}, replicate=0, spec_seed=5) for c in configurations]
children = [make_point({**c, "epochs": 3}, replicate=0, spec_seed=5, resume_from=p["identifier"])
            for c, p in zip(configurations, parents)]
for parent in parents:  # as asha's first rung: each trained alone, one epoch
    train_point(parent, options, root / "alone" / parent["identifier"])
shutil.copytree(root / "alone", root / "group")
alone = [train_point(child, options, root / "alone" / child["identifier"]) for child in children]
together = train_together(children, options, [root / "group" / child["identifier"] for child in children])
print(json.dumps({"alone": alone, "together": together}))
"""


def test_promotions_from_different_parents_train_as_one_group_and_each_ends_as_alone(on_jax):
    out = on_jax(PROMOTED_FROM_TWO_PARENTS)
    for alone, together in zip(out["alone"], out["together"], strict=True):
        assert alone["status"] == together["status"] == "ok", together["error"]
        assert together["epochs_completed"] == 3  # one from its own parent, two trained in the group
        for name in ("loss", "val_loss", "val_accuracy"):
            assert together[name] == pytest.approx(alone[name], rel=1e-4, abs=1e-6), name
        assert together["group_members"] == 2 and alone["group_members"] == 1
        assert together["member_memory_mb"] is None  # a CPU reports no memory: nothing to size by


TRAINED_IN_PARTS = """
import json, tempfile
from pathlib import Path
import simulators.engines.jax_step as jax_step
from generators.points import make_point
from hypers.fields import defaults
from simulators.engines.memory import GroupSize
from simulators.options import TrainingOptions
from simulators.run_dir import SimDir
from tests.helpers.training import train_point, train_together

fitting_group_size = jax_step.fitting_group_size
jax_step.fitting_group_size = lambda members, data, loss, margin: GroupSize(min(4, len(members)), 1.0)
options = TrainingOptions(engine="jax", tasks={"digits": {"train_samples": 200}})
points = [make_point({**defaults(), "architecture": "gru", "dataset": "digits", "hidden_dim": 8, "epochs": 2,
                      "learning_rate": 1e-2}, replicate=replicate, spec_seed=5) for replicate in range(5)]
root = Path(tempfile.mkdtemp())
alone = [train_point(p, options, root / "alone" / p["identifier"]) for p in points]
try:
    together = train_together(points, options, [root / "group" / p["identifier"] for p in points])
finally:  # other tests' scripts run in this process after this one: they size their groups as the engine does
    jax_step.fitting_group_size = fitting_group_size
curves = [len(json.loads(SimDir(root / "group" / p["identifier"]).history.read_text())) for p in points]
print(json.dumps({"alone": alone, "together": together, "curves": curves}))
"""


def test_a_group_too_large_for_the_device_trains_in_parts_each_member_once_as_alone(on_jax):
    out = on_jax(TRAINED_IN_PARTS)
    assert out["curves"] == [2] * 5  # every member's two epochs, once
    assert [together["group_members"] for together in out["together"]] == [3, 3, 3, 2, 2]  # 4 fit: 3 and 2
    for alone, together in zip(out["alone"], out["together"], strict=True):
        assert together["status"] == "ok", together
        assert together["val_loss"] == pytest.approx(alone["val_loss"], rel=1e-4, abs=1e-6)


SIZED_ONCE_PER_SHAPE = """
import json, tempfile
from pathlib import Path
import jax
import simulators.adjoint as adjoint
import simulators.engines.jax_step as jax_step
from generators.points import make_point
from hypers.fields import defaults
from simulators.options import TrainingOptions
from tests.helpers.compiles import counted_compiles
from tests.helpers.training import train_together

sized, built, probes, validations = [], [], [], []
measure, budget, build, probe = (jax_step._member_and_shared_bytes, jax_step.device_budget, jax_step._group_programs,
                                 adjoint._group_probe)
compile_validation = jax_step._compile_validation
def counted(members, data, loss):
    sized.append(members[0].model.get_layer("recurrent").units)
    return measure(members, data, loss)
def counted_build(template, *args):
    built.append(template.get_layer("recurrent").units)
    return build(template, *args)
def counted_probe(template, *args):
    probes.append(template.get_layer("recurrent").units)
    return probe(template, *args)
def counted_validation(evaluate, probe, state, *args):
    validations.append(len(state[0][0]))  # the group's members
    return compile_validation(evaluate, probe, state, *args)
jax_step._member_and_shared_bytes, jax_step.device_budget = counted, lambda margin: 2**30
jax_step._group_programs, adjoint._group_probe = counted_build, counted_probe
jax_step._compile_validation = counted_validation
for cache in (jax_step._member_bytes, jax_step._built_programs, adjoint._group_probes):
    cache.clear()
options = TrainingOptions(engine="jax", tasks={"digits": {"train_samples": 64}})
root = Path(tempfile.mkdtemp())
try:
    results = []
    with counted_compiles(("jit(train_epoch)", "jit(member_evaluate)", "jit(member_norms)")) as compiled:
        for hidden, seed in ((8, 1), (8, 2), (12, 1)):
            points = [make_point({**defaults(), "architecture": "rnn", "dataset": "digits", "hidden_dim": hidden,
                                  "epochs": 1}, replicate=replicate, spec_seed=seed) for replicate in range(2)]
            results += train_together(points, options, [root / str(hidden) / p["identifier"] for p in points])
finally:  # the process serves other tests' scripts after this one
    jax_step._member_and_shared_bytes, jax_step.device_budget = measure, budget
    jax_step._group_programs, adjoint._group_probe = build, probe
    jax_step._compile_validation = compile_validation
    for cache in (jax_step._member_bytes, jax_step._built_programs, adjoint._group_probes):
        cache.clear()
print(json.dumps({"sized": sized, "built": built, "probes": probes, "validations": validations,
                  "compiled": compiled, "results": results}))
"""


def test_a_group_is_sized_and_its_programs_built_once_per_shape(on_jax):
    out = on_jax(SIZED_ONCE_PER_SHAPE)
    # the second group of hidden 8 reused the first one's analysis, programs and adjoint probe
    assert out["sized"] == out["built"] == out["probes"] == [8, 12]
    # each shape's programs compiled once: the compile that sized its group trained it, and validation's,
    # compiled ahead in each group's first epoch, served its every call (digits' 360 validation samples:
    # chunks of 64 and a last of 40, two shapes)
    assert sorted(out["compiled"]) == sorted(2 * ["jit(train_epoch)", "jit(member_norms)"]
                                             + 4 * ["jit(member_evaluate)"]), out["compiled"]
    assert out["validations"] == [2, 2, 2]  # each group's, in its first epoch
    for result in out["results"]:
        assert result["status"] == "ok" and result["group_members"] == 2, result
        assert result["member_memory_mb"] > 0


VALIDATION_MEMORY = """
import json
import jax, numpy as np
from simulators.architectures.compute import Compute
from simulators.engines import Plan
from simulators.engines.jax_step import _programs, _validation_chunk, epoch_program, prepare
from simulators.engines.member import Member
from simulators.models import build_model
from simulators.tasks.base import TaskData

x, y = np.zeros((256, 100, 2), "float32"), np.zeros(256, "float32")
data = TaskData(x, y, x, y, objective="regression")
shape = lambda array: jax.ShapeDtypeStruct(array.shape, array.dtype)
rows = []
for architecture in ("gru", "lstm"):
    for remat in (False, True):
        members = [Member(build_model(architecture, 32, seed, data, compute=Compute(remat=remat)),
                          Plan(epochs=1, batch_size=16, learning_rate=1e-3, seed=seed), lambda *_: True)
                   for seed in range(2)]
        loss = prepare(members, data)
        train_epoch, arguments = epoch_program(members, data, loss)
        state = jax.tree.map(shape, arguments[0])
        chunk = _validation_chunk(members[0].model, 16)
        evaluate = _programs(members[0].model, loss, data.objective, 16)[1]
        rows.append({"remat": remat, "chunk": chunk,
                     "training": train_epoch.lower(*jax.tree.map(shape, arguments)).compile().memory_analysis()
                     .temp_size_in_bytes,
                     "validation": evaluate.lower(state, shape(x[:chunk]), shape(y[:chunk])).compile()
                     .memory_analysis().temp_size_in_bytes})
print(json.dumps(rows))
"""


def test_validations_chunk_needs_less_memory_than_the_training_step_the_group_was_sized_by(on_jax):
    """XLA's memory analysis (on the CPU) of gru and lstm groups: two batches at once where the
    scan stores its steps' intermediates, one under remat, where two would need more."""
    for row in on_jax(VALIDATION_MEMORY):
        assert row["chunk"] == (16 if row["remat"] else 32), row
        assert row["validation"] < row["training"], row


VALIDATION_COMPILED_AHEAD = """
import json
import jax, numpy as np
import simulators.adjoint as adjoint
from simulators.engines import Plan
from simulators.engines.jax_step import (_compile_validation, _evaluate_in_chunks, _group_programs, _state_and_keys,
                                         prepare)
from simulators.engines.member import Member
from simulators.models import build_model
from simulators.tasks.base import TaskData
from tests.helpers.compiles import counted_compiles

rng = np.random.default_rng(0)
x, y = rng.normal(size=(45, 9, 2)).astype("float32"), rng.normal(size=45).astype("float32")
data = TaskData(x, y, x, y, objective="regression")
members = [Member(build_model("gru", 7, seed, data), Plan(epochs=1, batch_size=8, learning_rate=1e-3, seed=seed),
                  lambda *_: True) for seed in range(2)]
loss = prepare(members, data)
evaluate = _group_programs(members[0].model, loss, data.objective, 8)[1]  # new programs: none compiled yet
adjoint._group_probes.clear()
try:
    probe = adjoint.group_adjoints(members[0].model, loss, data)
    state, _ = _state_and_keys(members)
    x_val, y_val = jax.numpy.asarray(x), jax.numpy.asarray(y)
    validation = ("jit(member_evaluate)", "jit(member_norms)")
    with counted_compiles(validation) as ahead:
        _compile_validation(evaluate, probe, state, x_val, y_val, 16)
    with counted_compiles(validation) as called:
        _evaluate_in_chunks(evaluate, state, x_val, y_val, 16)
        probe(state[0], state[1])
finally:  # the process serves other tests' scripts after this one
    adjoint._group_probes.clear()
print(json.dumps({"ahead": ahead, "called": called}))
"""


def test_validations_programs_compiled_ahead_serve_its_every_call(on_jax):
    """What compiles while the device trains a group's first epoch is what validation then runs:
    every chunk shape (45 samples in chunks of 16: 16 and 13) and the adjoint probe, nothing later."""
    out = on_jax(VALIDATION_COMPILED_AHEAD)
    assert sorted(out["ahead"]) == ["jit(member_evaluate)"] * 2 + ["jit(member_norms)"]
    assert out["called"] == []


SIZED_BY_ONE_WHERE_THE_GROUP_DOES_NOT_COMPILE = """
import json, tempfile
from pathlib import Path
import jax
import simulators.engines.jax_step as jax_step
from generators.points import make_point
from hypers.fields import defaults
from simulators.options import TrainingOptions
from tests.helpers.training import train_together

asked, measure, budget = [], jax_step._member_and_shared_bytes, jax_step.device_budget
def too_large_for_the_compiler(members, data, loss):
    asked.append(len(members))
    if len(members) > 1:
        raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: out of memory while autotuning")
    return measure(members, data, loss)
jax_step._member_and_shared_bytes, jax_step.device_budget = too_large_for_the_compiler, lambda margin: 2**30
jax_step._member_bytes.clear()
options = TrainingOptions(engine="jax", tasks={"digits": {"train_samples": 64}})
points = [make_point({**defaults(), "architecture": "rnn", "dataset": "digits", "hidden_dim": 6, "epochs": 1},
                     replicate=replicate, spec_seed=3) for replicate in range(3)]
try:
    results = train_together(points, options, [Path(tempfile.mkdtemp()) / p["identifier"] for p in points])
finally:  # the process serves other tests' scripts after this one
    jax_step._member_and_shared_bytes, jax_step.device_budget = measure, budget
    jax_step._member_bytes.clear()
print(json.dumps({"asked": asked, "results": results}))
"""


def test_a_group_whose_program_does_not_compile_is_sized_by_one_member(on_jax):
    out = on_jax(SIZED_BY_ONE_WHERE_THE_GROUP_DOES_NOT_COMPILE)
    assert out["asked"] == [3, 1]
    for result in out["results"]:
        assert result["status"] == "ok" and result["group_members"] == 3 and result["member_memory_mb"] > 0, result


STOPPED_AND_RESUMED = """
import json, tempfile
from pathlib import Path
from generators.points import make_point
from hypers.fields import defaults
from simulators.models import build_model
from simulators.options import TrainingOptions
from simulators.run_dir import SimDir
from simulators.training import load_task
from tests.helpers.training import train_point, train_together

options = TrainingOptions(engine="jax", tasks={"digits": {"train_samples": 200}}, **%(options)s)
points = [make_point({**defaults(), "architecture": "%(architecture)s", "dataset": "digits", "hidden_dim": 8,
                      "epochs": 2, "learning_rate": 1e-2}, replicate=replicate, spec_seed=5) for replicate in range(2)]
root = Path(tempfile.mkdtemp())
straight = train_together(points, options, [root / "straight" / p["identifier"] for p in points])
halves = [root / "halves" / p["identifier"] for p in points]
train_together([{**p, "epochs": 1} for p in points], options, halves)
for path in halves:
    SimDir(path).result.unlink()  # stopped after epoch 1 with its checkpoint: resumed below
resumed = train_together(points, options, halves)
model = build_model(points[0]["architecture"], 8, 0, load_task(points[0], options), compute=options.compute)
fused = model.get_layer("recurrent").uses_fused_kernel()
print(json.dumps({"straight": straight, "resumed": resumed, "fused": fused}))
"""


@pytest.mark.parametrize("architecture, options", [("lstm", {"precision": "bfloat16", "scan_unroll": 4}),
                                                   ("unicornn", {"precision": "bfloat16", "kernel": "fused"})])
def test_a_group_stopped_and_resumed_ends_as_trained_straight(on_jax, architecture, options):
    """bf16 products, an unrolled scan, the fused kernel: checkpoints hold what resumes exactly."""
    out = on_jax(STOPPED_AND_RESUMED % {"architecture": architecture, "options": options})
    assert out["fused"] == (options.get("kernel") == "fused")  # the path named is the path trained
    for straight, resumed in zip(out["straight"], out["resumed"], strict=True):
        assert straight["status"] == resumed["status"] == "ok" and resumed["epochs_completed"] == 2
        assert resumed["val_loss"] == pytest.approx(straight["val_loss"], rel=1e-4, abs=1e-6)
