"""Vectorised trainings on the JAX engine: a member of a group computes what it would alone,
and a diverging member is recorded without disturbing the others."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tests.conftest import run_command

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
# a member checkpointed after epoch 1 (the same point stopped there) and a fresh one: one program each
first, second = root / "mixed" / "first", root / "mixed" / "second"
train_point({**points[0], "epochs": 1}, options, first)
SimDir(first).result.unlink()
stopped_curve = json.loads(SimDir(first).history.read_text())
mixed = train_together(points[:2], options, [first, second])
mixed_curve = json.loads(SimDir(first).history.read_text())
# a member that cannot start (its parent checkpoint is gone) fails alone
orphan = {**points[2], "resume_from": "no-such-parent"}
cannot_start = train_together([points[0], orphan], options, [root / "start" / "a", root / "start" / "b"])
print(json.dumps({"alone": alone, "together": together, "curves": curves, "mixed": mixed,
                  "stopped_curve": stopped_curve, "mixed_curve": mixed_curve, "cannot_start": cannot_start}))
"""


def test_group_members_match_training_alone_and_divergence_is_isolated():
    result = run_command(["python", "-c", GROUP_VS_ALONE], env={"KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
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
    started, orphan = out["cannot_start"]
    assert started["status"] == "ok" and started["val_loss"] == pytest.approx(out["alone"][0]["val_loss"], rel=1e-4)
    assert orphan["status"] == "failed" and "no-such-parent" in orphan["error"]


def test_failed_members_of_a_group_retry_each_on_its_own(monkeypatch):
    from types import SimpleNamespace

    import simulators.sim_function as sim

    attempts = []

    def train(sim_dirs, settings, libE_info, allotment):
        attempts.append(list(sim_dirs))
        return [{"status": "failed" if name in ("b", "c") and len(attempts) == 1 else "ok"} for name in sim_dirs]

    monkeypatch.setattr(sim, "_train", train)
    settings = SimpleNamespace(worker=SimpleNamespace(retries=2))
    results = sim._train_with_retries([0, 1, 2], list("abc"), settings, {}, None)
    assert attempts == [["a", "b", "c"], ["b"], ["c"]]  # the group once, then its failures alone
    assert [results[i]["status"] for i in range(3)] == ["ok", "ok", "ok"]


def test_grouping_gathers_same_shape_points_up_to_the_size_and_loses_none():
    from generators.grouping import group_points, shape_of

    points = [{"architecture": arch, "dataset": "digits", "permute": False, "pad": 0, "orientation": "none",
               "hidden_dim": 8, "batch_size": 32, "epochs": epochs, "learning_rate": rate, "replicate": r}
              for arch in ("rnn", "gru") for epochs in (2, 4) for rate in (1e-2, 1e-3, 1e-4) for r in range(3)]
    groups = list(group_points(iter(points), 4))
    assert sorted(map(repr, (p for g in groups for p in g))) == sorted(map(repr, points))
    assert all(1 <= len(g) <= 4 and len({shape_of(p) for p in g}) == 1 for g in groups)
    assert len(groups) == 4 * 3  # each shape's 9 points: 4 + 4 + 1
    assert list(group_points(iter(points), 1)) == [[p] for p in points]
    # look-ahead is bounded: an endless stream of shapes that never fill a group still streams
    endless = ({**points[0], "hidden_dim": h} for h in itertools.count())
    assert [len(group) for group in itertools.islice(group_points(endless, 4), 5)] == [1] * 5


def test_grouped_ensemble_trains_each_group_in_one_trainer_with_every_point_recorded(write_spec, tmp_path):
    import numpy as np

    spec_path = write_spec(
        space={"choices": {"architecture": ["rnn", "gru"], "dataset": ["digits"], "hidden_dim": [8],
                           "learning_rate": [1e-2, 3e-3]}, "replicates": 2},
        simulator={"isolation": "process", "engine": "jax", "group_size": 3},
    )
    run_dir = tmp_path / "run"
    result = run_command(["python", "run_ensemble.py", "--spec", str(spec_path), "--nworkers", "2", "--out", str(run_dir)],
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


def test_dry_run_estimates_the_published_study_in_gpu_hours_from_measured_throughput(tmp_path):
    import yaml

    from ensembles.loading import load_spec
    from ensembles.resource_plan import gpu_hours

    result = run_command(["python", "run_ensemble.py", "--spec", "ensembles/gen_sweep.yaml", "--dry-run"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "GPU estimate: about" in result.stdout and "for 33,600 trainings" in result.stdout

    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({
        "name": "one", "space": {"choices": {"architecture": ["rnn"], "dataset": ["mnist", "digits"],
                                             "hidden_dim": [192], "pad": [1000], "orientation": ["post"], "epochs": [2]},
                                 "replicates": 3},
        "simulator": {"tasks": {"mnist": {"train_samples": 1000}}},
    }))
    table = {"device": "test", "group_size": 16, "steps": 784, "samples_per_s": {"rnn": {128: 1000, 256: 500}},
             "datasets": {"mnist": {"train_samples": 60000, "steps": 784}}}
    hours, unmeasured = gpu_hours(load_spec(spec_path), table)
    # 1000 samples x 2 epochs x (784 + 1000) / 784 steps at 1/750 s per sample (hidden 192 halfway)
    assert hours == pytest.approx(1000 * 2 * 1784 / 784 * 0.0015 * 6 / 3600)  # the mean over 6 trainings
    assert unmeasured == {"rnn on digits"}


def test_auto_engine_groups_only_where_a_gpu_and_the_jax_backend_are(write_spec, monkeypatch):
    import libensemble.resources.gpu_detect

    from ensembles.settings import trainings_per_sim as group_size
    from ensembles.loading import load_spec

    spec = load_spec(write_spec(simulator={"engine": "auto", "group_size": 8}))
    on_gpus = spec.model_copy(update={"resources": spec.resources.model_copy(update={"gpus_per_node": 4})})
    monkeypatch.setattr(libensemble.resources.gpu_detect, "get_num_gpus", lambda: 0)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert group_size(spec) == 1  # no GPU detected: one training per sim, every worker busy
    assert group_size(on_gpus) == 8
    monkeypatch.setattr(libensemble.resources.gpu_detect, "get_num_gpus", lambda: 2)
    assert group_size(spec) == 8
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")  # auto would resolve to fit in the trainer
    assert group_size(on_gpus) == 1
    jax_anywhere = spec.model_copy(update={"simulator": spec.simulator.model_copy(update={"engine": "jax"})})
    assert group_size(jax_anywhere) == 8
