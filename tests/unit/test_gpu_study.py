"""benchmarks/gpu_study.py's accounting of a group's trainer time, from the records its members
wrote: every program's epochs once, a group trained in parts, a member that stopped early and one
that joined from its parent's checkpoint."""

from __future__ import annotations

import pytest

from benchmarks.gpu_study import group_timings, time_breakdown
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
    first, second = [epoch(1, 5.0, 4.5), epoch(2, 2.0, 1.8)], [epoch(1, 4.0, 3.6), epoch(2, 2.2, 1.9)]
    write_group(run_dir, {"a": first, "b": first, "c": second, "d": second[:1]}, {}, train_seconds=15.0)

    [timing] = group_timings(run_dir.path)
    assert timing["members"] == 4 and timing["programs"] == 2  # d stopped after an epoch: no third part
    assert timing["epochs_s"] == pytest.approx(13.2)
    # each part's first epoch beyond the median of the later ones (fit 1.85, rest 0.25)
    assert timing["training_compiling_s"] == pytest.approx((4.5 - 1.85) + (3.6 - 1.85))
    shares = time_breakdown(run_dir.path, worker_seconds=20.0)
    assert shares["setup"] == pytest.approx((15.0 - 13.2) / 20, abs=1e-3)
    assert shares["training"] + shares["compiling"] + shares["validation"] == pytest.approx(13.2 / 20, abs=2e-3)
    assert shares["outside"] == pytest.approx(5.0 / 20, abs=1e-3)


def test_a_member_joining_from_its_parent_starts_a_phase_and_its_parents_epochs_are_not_the_groups(tmp_path):
    run_dir = RunDir.create(tmp_path / "run", "name: test\n")
    alone = [epoch(1, 5.0, 4.5), epoch(2, 3.0, 2.8), epoch(3, 2.0, 1.8)]
    joined = [epoch(1, 9.0, 8.0), alone[1], alone[2]]  # its epoch 1 is its parent's, trained elsewhere
    write_group(run_dir, {"a": alone, "b": joined}, {"b": "parent"}, train_seconds=11.0)

    [timing] = group_timings(run_dir.path)
    assert timing["epochs_s"] == pytest.approx(10.0)  # the parent's 9 s are not this group's
    assert timing["programs"] == 2  # a alone from epoch 1, then a and b together from epoch 2
