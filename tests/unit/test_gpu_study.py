"""benchmarks/gpu_study.py's accounting of a group's trainer time, from the records its members
wrote (every program's epochs once: a group trained in parts, a member that stopped early, one that
joined from its parent's checkpoint), and its table of each configuration's scores."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from benchmarks.gpu_study import group_timings, groups, scores, time_breakdown
from simulators.records import write_json
from simulators.run_dir import RunDir


def epoch(number: int, seconds: float, fit: float) -> dict:
    return {"epoch": number, "loss": 0.1, "val_loss": 0.1, "seconds": seconds, "fit_seconds": fit}


def write_group(run_dir: RunDir, histories: dict[str, list[dict]], parents: dict[str, str], train_seconds: float):
    """A group of the members in ``histories`` (the first holds group.json), each resumed from
    ``parents`` where named; a parent's own history is its first epoch."""
    for name, history in histories.items():
        sim_dir = run_dir.sim(name).make()
        parent = parents.get(name, "")
        write_json(sim_dir.point, {"architecture": "gru", "resume_from": parent})
        write_json(sim_dir.history, history)
        write_json(sim_dir.result, {"train_seconds": train_seconds})
        if parent:
            write_json(run_dir.sim(parent).make().history, history[:1])
    write_json(run_dir.sim(next(iter(histories))).group, [str(run_dir.sim(name).path) for name in histories])


def test_a_group_in_two_parts_counts_each_parts_epochs_and_compile_once(tmp_path):
    run_dir = RunDir.create(tmp_path / "run", "name: test\n")
    first = [epoch(1, 5.0, 4.5), epoch(2, 2.0, 1.8), epoch(3, 2.0, 1.8)]
    second = [epoch(1, 3.0, 2.6), epoch(2, 1.0, 0.9), epoch(3, 1.0, 0.9)]  # a smaller part: shorter epochs
    write_group(run_dir, {"a": first, "b": first, "c": second, "d": second[:1]}, {}, train_seconds=16.0)

    [timing] = group_timings(groups(run_dir.path))
    assert (timing["members"], timing["parts"], timing["phases"]) == (4, 2, 2)  # d stopped after an epoch
    assert timing["epochs_s"] == pytest.approx(14.0)
    # each part's first epoch against its own later ones: 4.5 - 1.8 and 2.6 - 0.9 (one median for
    # the whole group, 1.35, would count the second part's 1.25)
    assert timing["training_compiling_s"] == pytest.approx(2.7 + 1.7)
    assert timing["compiling_s"] == pytest.approx(2.7 + 1.7 + 0.3 + 0.3)
    shares = time_breakdown(groups(run_dir.path), worker_seconds=20.0)
    assert shares["compiling"] == pytest.approx(5.0 / 20, abs=1e-3)
    assert shares["training"] == pytest.approx((4.5 + 3.6 + 2.6 + 1.8 - 4.4) / 20, abs=1e-3)
    assert shares["setup"] == pytest.approx((16.0 - 14.0) / 20, abs=1e-3)


def test_a_member_joining_from_its_parent_starts_a_phase_and_its_parents_epochs_are_not_the_groups(tmp_path):
    run_dir = RunDir.create(tmp_path / "run", "name: test\n")
    alone = [epoch(1, 5.0, 4.5), epoch(2, 3.0, 2.8), epoch(3, 2.0, 1.8)]
    joined = [epoch(1, 9.0, 8.0), alone[1], alone[2]]  # its epoch 1 is its parent's, trained elsewhere
    write_group(run_dir, {"a": alone, "b": joined}, {"b": "parent"}, train_seconds=11.0)

    [timing] = group_timings(groups(run_dir.path))
    assert timing["epochs_s"] == pytest.approx(10.0)  # the parent's 9 s are not this group's
    assert (timing["parts"], timing["phases"]) == (1, 2)  # a alone from epoch 1, then a and b from epoch 2
    assert timing["training_compiling_s"] == pytest.approx((4.5 - 1.8) + (2.8 - 1.8))


def test_a_group_of_one_epoch_has_no_compile_to_tell_and_one_with_none_is_all_setup(tmp_path):
    run_dir = RunDir.create(tmp_path / "run", "name: test\n")
    write_group(run_dir, {"a": [epoch(1, 4.0, 3.5)], "b": [epoch(1, 4.0, 3.5)]}, {}, train_seconds=5.0)
    write_group(run_dir, {"c": []}, {}, train_seconds=6.0)  # failed before its first epoch

    timings = {timing["members"]: timing for timing in group_timings(groups(run_dir.path))}
    assert timings[2]["compiling_s"] is None and timings[1]["parts"] == 0
    shares = time_breakdown(groups(run_dir.path), worker_seconds=20.0)
    assert shares["compiling"] == 0.0
    assert shares["training"] == pytest.approx(3.5 / 20) and shares["validation"] == pytest.approx(0.5 / 20)
    assert shares["setup"] == pytest.approx((1.0 + 6.0) / 20)


def test_scores_average_the_replicates_that_did_not_diverge_and_count_the_rest():
    rows = [{"architecture": "gru", "dataset": "adding", "permute": False, "pad": 0, "orientation": "none",
             "learning_rate": rate, "hidden_dim": 128, "epochs": epochs, "status": status, "score": value}
            for rate, epochs, status, value in [
                (0.01, 9, "ok", -0.02), (0.01, 9, "ok", -0.04), (0.01, 9, "diverged", -math.inf),
                (0.001, 3, "ok", -0.16),  # pruned at its 3-epoch rung: one training, no spread
                (0.02, 1, "ok", -0.5), (0.02, 9, "ok", -0.03)]]  # its chain at 1 epoch, then 9
    table = {row["learning_rate"]: row for row in scores(pd.DataFrame(rows))}
    assert table[0.01]["mean"] == pytest.approx(-0.03) and (table[0.01]["count"], table[0.01]["diverged"]) == (3, 1)
    assert table[0.001]["epochs"] == 3 and table[0.001]["std"] is None  # JSON-safe: no NaN
    assert table[0.02]["epochs"] == 9 and table[0.02]["mean"] == pytest.approx(-0.03)
    json.dumps(list(table.values()), allow_nan=False)
