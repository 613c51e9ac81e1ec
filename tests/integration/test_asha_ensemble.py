"""A real ASHA ensemble, killed and resumed: no promotion repeated, each group's best continued
from its own checkpoint; a chain of rungs ends as one full-budget training of its seed."""

import contextlib
import io
import json
import os
import signal

import numpy as np
import pytest

from tests.helpers.runs import run_command, start_ensemble, wait_for_saved


def test_killed_asha_run_resumes_without_repeating_a_promotion_and_then_is_finished(write_spec, tmp_path):
    """Killed after a periodic save, an ASHA run resumes from its history: the rungs are rebuilt,
    no training runs twice, each group's best goes on from its own checkpoint, and the finished
    search then says so and leaves its history alone."""
    spec_path = write_spec(
        space={"choices": {"architecture": ["rnn", "gru"], "dataset": ["digits"], "hidden_dim": [8],
                           "learning_rate": [0.003, 0.01, 0.03]}, "replicates": 1},
        generator={"kind": "asha", "eta": 3, "min_budget": 1, "max_budget": 3},
        allocator={"save_every": 1},
    )
    run_dir = tmp_path / "run"
    process = start_ensemble(spec_path, run_dir)
    wait_for_saved(run_dir, finished=4)  # rnn's first rung done: its promotion runs
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    before = np.load(run_dir / "history.npy")
    assert before["sim_ended"].sum() < 8  # 6 configurations at 1 epoch, each group's best at 3

    result = run_command(["python", "run_ensemble.py", "--resume", str(run_dir), "--nworkers", "2"])
    assert result.returncode == 0, result.stderr[-3000:]
    H = np.load(run_dir / "history.npy")
    assert H["sim_ended"].all() and (H["status"] == "ok").all()
    assert len(set(H["identifier"])) == len(H) == 8
    promoted = H[H["resume_from"] != ""]
    assert sorted(promoted["architecture"]) == ["gru", "rnn"] and (promoted["epochs"] == 3).all()
    for row in promoted:
        first_rung = H[(H["epochs"] == 1) & (H["architecture"] == row["architecture"])]
        parent = first_rung[first_rung["identifier"] == row["resume_from"]][0]
        assert parent["val_accuracy"] == first_rung["val_accuracy"].max()
        history = json.loads((run_dir / row["sim_dir"] / "history.json").read_text())
        parent_history = json.loads((run_dir / parent["sim_dir"] / "history.json").read_text())
        assert [e["epoch"] for e in history] == [1, 2, 3] and history[0] == parent_history[0]  # continued
        assert row["epochs_completed"] == 3

    saved = (run_dir / "history.npy").read_bytes()
    again = run_command(["python", "run_ensemble.py", "--resume", str(run_dir)])
    assert again.returncode == 0 and "already finished" in again.stdout, again.stdout + again.stderr[-2000:]
    assert (run_dir / "history.npy").read_bytes() == saved


def test_grouped_asha_run_killed_and_resumed_trains_every_chain_once(write_spec, tmp_path):
    """ASHA on vectorised groups (JAX engine, up to 3 points of one shape per sim), killed after
    a save and resumed: every configuration's chain of rungs appears once, none trained twice."""
    spec_path = write_spec(
        space={"choices": {"architecture": ["rnn", "gru"], "dataset": ["digits"], "hidden_dim": [8],
                           "learning_rate": [0.003, 0.01, 0.03]}, "replicates": 1},
        generator={"kind": "asha", "eta": 3, "min_budget": 1, "max_budget": 3},
        simulator={"isolation": "process", "engine": "jax", "group_size": 3},
        allocator={"save_every": 1},
    )
    run_dir = tmp_path / "run"
    process = start_ensemble(spec_path, run_dir)
    wait_for_saved(run_dir, finished=3)  # a first group of three back
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    result = run_command(["python", "run_ensemble.py", "--resume", str(run_dir), "--nworkers", "2"])
    assert result.returncode == 0, result.stderr[-3000:]
    H = np.load(run_dir / "history.npy")
    assert H["sim_ended"].all() and (H["status"] == "ok").all(), H[["status", "error"]]
    assert len(set(H["identifier"])) == len(H) == 8  # 6 first rungs, each architecture's best promoted once
    promoted = H[H["resume_from"] != ""]
    assert sorted(promoted["architecture"]) == ["gru", "rnn"] and len(set(promoted["resume_from"])) == 2
    groups = [json.loads(path.read_text()) for path in (run_dir / "sims").glob("*/group.json")]
    assert groups and all(len(group) <= 3 for group in groups)


CHAIN_VS_STRAIGHT = """
import json, tempfile
from pathlib import Path
import numpy as np
from generators.asha import AshaScheduler
from hypers.fields import defaults
from simulators.options import TrainingOptions
from tests.helpers.training import train_point

options = TrainingOptions(engine=ENGINE, tasks={"digits": {"train_samples": 200}})
configuration = {**defaults(), "architecture": "gru", "dataset": "digits", "hidden_dim": 8, "learning_rate": 1e-2}
asha = AshaScheduler(iter([configuration]), seed=5, budgets=[1, 3, 9], eta=3, finalist_replicates=1)
root = Path(tempfile.mkdtemp())
chain = []
while (point := asha.next_point()) is not None:  # 1 epoch, then continued to 3 and to 9 (closing promotions)
    result = train_point(point, options, root / point["identifier"])
    asha.record(point["identifier"], result["status"], result["val_accuracy"], result["val_loss"])
    chain.append((point, result))
top, ended = chain[-1]
straight = train_point({**top, "resume_from": ""}, options, root / "straight")
weights = [np.load(root / name / "checkpoint.npz") for name in (top["identifier"], "straight")]
print(json.dumps({"epochs": [p["epochs"] for p, _ in chain], "seeds": [p["seed"] for p, _ in chain],
                  "ended": ended, "straight": straight,
                  "weights_equal": all(np.allclose(weights[0][k], weights[1][k], rtol=1e-5, atol=1e-7)
                                       for k in weights[0].files if k.startswith("weight_"))}))
"""


def check_chain_ends_as_straight(out):
    assert out["epochs"] == [1, 3, 9] and len(set(out["seeds"])) == 1  # one seed along the chain
    assert out["ended"]["epochs_completed"] == out["straight"]["epochs_completed"] == 9
    for name in ("loss", "val_loss", "val_accuracy"):
        assert out["ended"][name] == pytest.approx(out["straight"][name], rel=1e-5, abs=1e-7), name
    assert out["weights_equal"]


def test_a_chain_of_rungs_ends_as_a_full_budget_training_of_its_seed_on_fit():
    """A finalist's chain counts as its replicate 0: on the fit engine (TensorFlow, as quick_asha
    trains) a configuration continued 1 -> 3 -> 9 epochs ends with the weights and metrics of a
    9-epoch training from scratch with the same seed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(CHAIN_VS_STRAIGHT.replace("ENGINE", repr("fit")), {"__name__": "__main__"})
    check_chain_ends_as_straight(json.loads(printed.getvalue().splitlines()[-1]))


def test_a_chain_of_rungs_ends_as_a_full_budget_training_of_its_seed_on_jax(on_jax):
    check_chain_ends_as_straight(on_jax(CHAIN_VS_STRAIGHT.replace("ENGINE", repr("jax"))))
