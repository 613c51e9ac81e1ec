"""The benchmarks run and report what they claim; no timings are asserted (they depend on the machine)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers.runs import run_command


def test_ensemble_overhead_reports_every_run(tmp_path):
    out = tmp_path / "overhead.json"
    result = run_command(["python", "benchmarks/ensemble_overhead.py", "--workers", "2", "--seconds", "0.05",
                          "--comms", "local", "--sims-per-worker", "2", "--isolation-sims", "0",
                          "--work-dir", str(tmp_path / "runs"), "--json", str(out)], timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert {"machine", "cpus", "libensemble", "mpich"} <= set(report["environment"])
    assert [row["kind"] for row in report["dispatch"]] == ["plain", "taskgen"]
    for row in report["dispatch"]:
        assert row["sims"] == 4, row
        assert {"rate_per_s", "ideal_rate_per_s", "util", "util_wall", "latency_ms", "load_before"} <= set(row)


@pytest.mark.parametrize("architecture", ["lstm", "unicornn"])
def test_unrolled_baseline_computes_taskgens_model(architecture):
    """The baseline differs from taskgen only in how the time loop runs: same weights, same outputs."""
    from benchmarks.unrolled_baseline import build_unrolled_model
    from simulators.models import build_model
    from simulators.tasks.base import TaskData

    x = np.random.default_rng(0).uniform(size=(3, 5, 1)).astype("float32")
    data = TaskData(x, np.zeros(3, "int32"), x, np.zeros(3, "int32"), objective="classification", n_classes=10)
    ours, unrolled = build_model(architecture, 8, 3, data), build_unrolled_model(architecture, 8, 3, data)
    for mine, theirs in zip(ours.get_weights(), unrolled.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(unrolled(x)), rtol=1e-5, atol=1e-6)


def test_lstm_floor_reports_the_work_it_timed(tmp_path):
    out = tmp_path / "floor.json"
    result = run_command(["python", "benchmarks/lstm_floor.py", "--steps", "8", "--hidden", "4", "--batch", "2",
                          "--batches", "2", "--json", str(out)], timeout=120)
    assert result.returncode == 0, result.stderr
    row = json.loads(out.read_text())["result"]
    assert row["steps"] == 8 and row["samples_per_s"] > 0 and row["gflop_per_s"] > 0


def test_group_setup_reports_each_groups_parts(tmp_path):
    pytest.importorskip("jax")
    out = tmp_path / "setup.json"
    result = run_command(["python", "benchmarks/group_setup.py", "--k", "2", "--groups", "2", "--hidden", "4",
                          "--steps", "5", "--samples", "64", "--epochs", "2", "--json", str(out)],
                         env={"KERAS_BACKEND": "jax"}, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["environment"]["backend"] == "jax" and report["model_build_s"] > 0
    assert len(report["groups"]) == 2
    for group in report["groups"]:  # the parts add up to the group's wall time
        parts = group["training_s"] + group["validation_s"] + group["setup_s"]
        assert group["training_s"] > 0 and parts == pytest.approx(group["wall_s"], abs=0.002)
