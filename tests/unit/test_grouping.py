"""Vectorised groups without training: which points group, how failed members retry, where auto
groups, and the GPU-hour estimate from measured group throughput."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
import yaml

import simulators.sim_function as sim
from ensembles.loading import PROJECT_ROOT, load_spec
from ensembles.resource_plan import (
    configuration_rate_sets,
    fused_fallbacks,
    gpu_hours,
    halving_epochs,
    seconds_per_sample,
)
from ensembles.settings import trainings_per_sim
from generators.grouping import SimsInFlight, group_points
from run_ensemble import main
from simulators.engines.memory import even_parts, members_that_fit
from simulators.options import AUTO_GROUP_LIMIT
from simulators.training import shape_of


def test_failed_members_of_a_group_retry_each_on_its_own(monkeypatch):
    attempts = []

    def train(sim_dirs, settings, libE_info, allotment):
        attempts.append(list(sim_dirs))
        return [{"status": "failed" if name in ("b", "c") and len(attempts) == 1 else "ok"} for name in sim_dirs]

    monkeypatch.setattr(sim, "_attempt", train)
    settings = SimpleNamespace(worker=SimpleNamespace(retries=2))
    results = sim._with_retries([0, 1, 2], list("abc"), settings, {}, None)
    assert attempts == [["a", "b", "c"], ["b"], ["c"]]  # the group once, then its failures alone
    assert [results[i]["status"] for i in range(3)] == ["ok", "ok", "ok"]


def test_grouping_gathers_same_shape_points_up_to_the_size_and_loses_none():
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


def test_dry_run_estimates_the_published_study_in_gpu_hours_from_measured_throughput(tmp_path, capsys):
    assert main(["--spec", str(PROJECT_ROOT / "ensembles" / "gen_sweep.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "GPU estimate: about" in out and "for 33,600 trainings" in out

    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({
        "name": "one", "space": {"choices": {"architecture": ["rnn"], "dataset": ["mnist", "digits"],
                                             "hidden_dim": [192], "pad": [1000], "orientation": ["post"],
                                             "epochs": [2]},
                                 "replicates": 3},
        "simulator": {"tasks": {"mnist": {"train_samples": 1000}}},
    }))
    table = {"device": "test", "steps": 784, "rates": {"float32": {"samples_per_s": {"rnn": {128: 1000, 256: 500}}}},
             "datasets": {"mnist": {"train_samples": 60000, "steps": 784}}}
    hours, unmeasured = gpu_hours(load_spec(spec_path), table)
    # 1000 samples x 2 epochs x (784 + 1000) / 784 steps at 1/750 s per sample (hidden 192 halfway)
    assert hours == pytest.approx(1000 * 2 * 1784 / 784 * 0.0015 * 6 / 3600)  # the mean over 6 trainings
    assert unmeasured == {"rnn on digits"}


def test_the_estimate_takes_the_rates_of_the_specs_compute_settings_where_measured():
    table = {"rates": {"float32": {"samples_per_s": {"rnn": {128: 100, 256: 50}, "lstm": {128: 40, 256: 20}}},
                       "bfloat16": {"samples_per_s": {"rnn": {128: 200, 256: 100}}},
                       "bfloat16+fused": {"samples_per_s": {"rnn": {128: 800}}}}}
    sets = ["bfloat16+fused", "bfloat16", "float32"]
    assert seconds_per_sample("rnn", 128, table, sets) == pytest.approx(1 / 800)
    assert seconds_per_sample("rnn", 192, table, sets) == pytest.approx((1 / 200 + 1 / 100) / 2)  # fused: 128 only
    assert seconds_per_sample("lstm", 128, table, sets) == pytest.approx(1 / 40)  # only float32 measured it
    assert seconds_per_sample("gru", 128, table, sets) is None


def test_dry_run_names_the_configurations_a_fused_kernel_leaves_to_the_scan(write_spec):
    spec = load_spec(write_spec(simulator={"kernel": "fused", "precision": "bfloat16"},
                                space={"choices": {"architecture": ["rnn", "lstm", "gru"], "dataset": ["digits"],
                                                   "hidden_dim": [64, 128]}}))
    assert fused_fallbacks(spec) == (
        "plan: kernel fused runs the scan for gru (no fused cell) and for lstm at hidden 128 (recurrent blocks over "
        "what a GPU program holds in bfloat16: docs/performance.md)")
    scan = spec.model_copy(update={"simulator": spec.simulator.model_copy(update={"kernel": "scan"})})
    assert fused_fallbacks(scan) is None
    # and the GPU-hour estimate counts them at the scan's rates
    assert configuration_rate_sets(spec, "rnn", 256) == ["bfloat16+fused", "bfloat16", "float32"]
    assert configuration_rate_sets(spec, "lstm", 128) == ["bfloat16", "float32"]


def test_auto_engine_groups_only_where_a_gpu_and_the_jax_backend_are(write_spec, monkeypatch):
    import libensemble.resources.gpu_detect

    spec = load_spec(write_spec(simulator={"engine": "auto", "group_size": 8}))
    on_gpus = spec.model_copy(update={"resources": spec.resources.model_copy(update={"gpus_per_node": 4})})
    monkeypatch.setattr(libensemble.resources.gpu_detect, "get_num_gpus", lambda: 0)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert trainings_per_sim(spec) == 1  # no GPU detected: one training per sim, every worker busy
    assert trainings_per_sim(on_gpus) == 8
    monkeypatch.setattr(libensemble.resources.gpu_detect, "get_num_gpus", lambda: 2)
    assert trainings_per_sim(spec) == 8
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")  # auto would resolve to fit in the trainer
    assert trainings_per_sim(on_gpus) == 1
    jax_anywhere = spec.model_copy(update={"simulator": spec.simulator.model_copy(update={"engine": "jax"})})
    assert trainings_per_sim(jax_anywhere) == 8


def test_a_sim_frees_its_worker_once_all_its_points_came_back():
    sims = SimsInFlight()
    rows = sims.rows([[{"identifier": "a"}, {"identifier": "b"}], [{"identifier": "c"}]])
    assert [row["priority"] for row in rows] == [-1, -1, -2]  # one priority per sim, earlier ranks higher
    assert sims.ended(["a"]) == 0
    assert sims.ended(["c", "b"]) == 2


@pytest.mark.parametrize("budget, member, shared, wanted, fit", [
    (10_000, 1_000, 2_000, 64, 8),  # (10,000 - 2,000) // 1,000
    (10_000, 1_000, 2_000, 5, 5),  # all that were asked for fit
    (1_000, 5_000, 0, 8, 1),  # not even one: it trains alone, as it would outside a group
    (10_000, 0, 0, 16, 16),  # nothing per member known: all of them
])
def test_group_size_auto_fits_the_members_in_the_memory_budget(budget, member, shared, wanted, fit):
    assert members_that_fit(budget, member, shared, wanted) == fit


@pytest.mark.parametrize("count, fitting, sizes", [
    (20, 19, [10, 10]),  # not 19 and a lone member taking as long on a GPU
    (25, 24, [13, 12]),
    (5, 2, [2, 2, 1]),
    (16, 16, [16]),
    (3, 0, [1, 1, 1]),  # none fit: each alone, as it would outside a group
    (0, 4, []),
])
def test_a_group_beyond_the_device_trains_in_the_fewest_parts_as_even_as_can_be(count, fitting, sizes):
    parts = even_parts(count, fitting)
    assert [len(part) for part in parts] == sizes
    assert [k for part in parts for k in part] == list(range(count))  # each member once, in order


def test_dry_run_estimates_an_asha_search_by_the_epochs_successive_halving_trains(capsys):
    # 9 configurations, rungs 1, 3, 9: 9 x 1 epoch, 3 continued 2 more, 1 continued 6 more, its 2nd replicate 9
    assert halving_epochs(9, [1, 3, 9], eta=3, replicates=2) == 9 + 6 + 6 + 9
    # two brackets: 5 configurations from rung 1 (5 + 2 + 6 + 9), 4 from rung 3 (12 + 6 + 9)
    assert halving_epochs(9, [1, 3, 9], eta=3, replicates=2, brackets=2) == 22 + 27
    # replicate_finalists: leader: one replicate of the group's leader, not one per bracket's finalist
    assert halving_epochs(9, [1, 3, 9], eta=3, replicates=2, brackets=2, leader=True) == 13 + 18 + 9
    assert main(["--spec", str(PROJECT_ROOT / "ensembles" / "asha_sweep.yaml"), "--dry-run"]) == 0
    assert "GPU estimate: about" in capsys.readouterr().out


def test_group_size_auto_groups_only_with_a_gpu(write_spec):
    spec = load_spec(write_spec(simulator={"engine": "jax", "group_size": "auto"}))
    on_cpu = spec.model_copy(update={"resources": spec.resources.model_copy(update={"gpus_per_node": 0})})
    on_gpu = spec.model_copy(update={"resources": spec.resources.model_copy(update={"gpus_per_node": 1})})
    assert trainings_per_sim(on_cpu) == 1  # groups do not pay on a CPU, and no memory bounds them there
    assert trainings_per_sim(on_gpu) == AUTO_GROUP_LIMIT
