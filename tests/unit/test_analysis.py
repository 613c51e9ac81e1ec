"""Post-hoc analysis (python -m analysis) on synthetic history arrays with known effects.

The synthetic study: rnn, lstm and gru on four tasks, four hyperparameter configurations each
(learning_rate x hidden_dim), 10 replicates. The best configuration (learning_rate 0.01,
hidden_dim 32) is better than the others by a known margin. Noise has mean exactly zero within
every (configuration, architecture) group, so each group's mean is its known value:

* digits-none-False: lstm = rnn + 0.1, gru = rnn
* digits-post-True: all equal
* digits-uniform-False: gru = rnn + d, with d chosen so the raw p-value is 0.03: significant
  alone, not after Bonferroni (x3 pairs = 0.09)
* adding-none-False: a regression (val_accuracy NaN): lstm's val_loss 0.05 below the others
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from scipy import stats

from analysis.__main__ import main
from analysis.loading import AnalysisError, final_rows, load_csv, load_runs, status_counts
from analysis.pipeline import analyse
from analysis.status import status_report
from hypers.fields import point_dtype
from simulators.records import ADJOINT_FIELDS, RESULT_DTYPE
from tests.helpers.runs import run_command

LIBE_DTYPE = [("sim_id", "i8"), ("sim_started", bool), ("sim_ended", bool), ("gen_informed", bool),
              ("sim_started_time", "f8"), ("sim_ended_time", "f8"), ("sim_worker", "i8")]
ARCHITECTURES = ("rnn", "lstm", "gru")
LEARNING_RATES = (1e-3, 1e-2)
HIDDEN_DIMS = (16, 32)
REPLICATES = 10
NOISE_SD = 0.01
BEST = (1e-2, 32)
# variation of the digits tasks: (orientation, pad, permute)
TASKS = {"digits-none-False": ("digits", "none", 0, False), "digits-post-True": ("digits", "post", 8, True),
         "digits-uniform-False": ("digits", "uniform", 8, False), "adding-none-False": ("adding", "none", 0, False)}
ALL_POINTS = len(TASKS) * len(ARCHITECTURES) * len(LEARNING_RATES) * len(HIDDEN_DIMS) * REPLICATES


def centred_noise(seed: int) -> np.ndarray:
    """REPLICATES draws with mean exactly 0 and standard deviation exactly NOISE_SD."""
    draws = np.random.default_rng(seed).normal(size=REPLICATES)
    draws -= draws.mean()
    return draws / draws.std(ddof=1) * NOISE_SD


def bonferroni_margin() -> float:
    """The difference of means whose pooled t-test (3 groups of REPLICATES) has p = 0.03."""
    df = 3 * REPLICATES - 3
    return stats.t.ppf(1 - 0.03 / 2, df) * NOISE_SD * math.sqrt(2 / REPLICATES)


def expected_value(task: str, architecture: str, learning_rate: float, hidden_dim: int) -> float:
    """The known group mean: val_accuracy, or val_loss for adding."""
    worse = 0.05 + 0.01 * (learning_rate == 1e-3) + 0.02 * (hidden_dim == 16)
    penalty = 0.0 if (learning_rate, hidden_dim) == BEST else worse
    if task == "adding-none-False":
        return 0.3 + penalty - (0.05 if architecture == "lstm" else 0.0)
    base = 0.6 - penalty
    if task == "digits-none-False" and architecture == "lstm":
        base += 0.1
    if task == "digits-uniform-False" and architecture == "gru":
        base += bonferroni_margin()
    return base


def synthetic_rows(adjoints: bool = False) -> np.ndarray:
    results = [field for field in RESULT_DTYPE if adjoints or field[0] not in ADJOINT_FIELDS]  # as older runs
    dtype = point_dtype() + results + LIBE_DTYPE
    H = np.zeros(ALL_POINTS, dtype=dtype)
    number = 0
    for task, (dataset, orientation, pad, permute) in TASKS.items():
        for a, architecture in enumerate(ARCHITECTURES):
            for learning_rate in LEARNING_RATES:
                for hidden_dim in HIDDEN_DIMS:
                    noise = centred_noise(number)
                    for replicate in range(REPLICATES):
                        identifier = f"{number:08d}-0000-5000-8000-000000000000"
                        value = expected_value(task, architecture, learning_rate, hidden_dim) + noise[replicate]
                        regression = dataset == "adding"
                        values = {
                            "architecture": architecture, "dataset": dataset, "permute": permute, "pad": pad,
                            "orientation": orientation, "hidden_dim": hidden_dim, "learning_rate": learning_rate,
                            "epochs": 3, "batch_size": 32, "seed": number, "replicate": replicate,
                            "identifier": identifier, "resume_from": "",
                            "status": "ok", "val_accuracy": np.nan if regression else value,
                            "accuracy": np.nan if regression else value + 0.02,
                            "best_val_accuracy": np.nan if regression else value,
                            "val_loss": value if regression else 1.5 - value,
                            "loss": (value if regression else 1.5 - value) - 0.01,
                            "epochs_completed": 3, "n_params": 1000, "train_seconds": 1.0,
                            "sim_dir": f"sims/{identifier}", "error": "",
                            "sim_id": number, "sim_started": True, "sim_ended": True, "gen_informed": True,
                            "sim_worker": 1, "sim_started_time": number, "sim_ended_time": number + 1,
                        }
                        if adjoints:
                            values.update(initial_adjoint=10.0 ** -(a + 1), terminal_adjoint=1.0)
                        for name, item in values.items():
                            H[name][number] = item
                        number += 1
    return H


def spec_text(**generator) -> str:
    """The synthetic study as a spec: exclusion rules leave exactly the four tasks of TASKS."""
    return yaml.safe_dump({
        "name": "synthetic",
        "space": {
            "choices": {"architecture": list(ARCHITECTURES), "dataset": ["digits", "adding"],
                        "permute": [False, True], "pad": [0, 8], "orientation": ["none", "post", "uniform"],
                        "learning_rate": list(LEARNING_RATES), "hidden_dim": list(HIDDEN_DIMS)},
            "exclude": [{"pad": 0, "orientation": ["post", "uniform"]}, {"pad": 8, "orientation": "none"},
                        {"dataset": "adding", "orientation": ["post", "uniform"]},
                        {"dataset": "adding", "permute": True},
                        {"orientation": "none", "permute": True}, {"orientation": "post", "permute": False},
                        {"orientation": "uniform", "permute": True}],
            "replicates": REPLICATES,
        },
        "generator": {"kind": "grid", "seed": 0, **generator},
        "simulator": {"epochs": 3},
    })


def write_run(path, H: np.ndarray, spec: str | None = None, curves: bool = True):
    """A run directory as taskgen writes it: spec.yaml, history.npy, sims/<id>/ records."""
    path.mkdir(parents=True)
    (path / "spec.yaml").write_text(spec or spec_text())
    np.save(path / "history.npy", H)
    if curves:
        for row in H[H["sim_ended"]]:
            write_sim(path, row)
    return path


def write_sim(run_dir, row, result: bool = True) -> None:
    sim = run_dir / "sims" / row["identifier"]
    sim.mkdir(parents=True, exist_ok=True)
    point = {name: row[name].item() for name, _ in point_dtype()}
    (sim / "point.json").write_text(json.dumps(point))
    final = row["val_accuracy"] if np.isfinite(row["val_accuracy"]) else row["val_loss"]
    epochs = [{"epoch": e, "loss": float(row["loss"]) + 0.1 * (3 - e),
               "val_loss": (float(row["val_loss"]) + 0.1 * (3 - e) if not np.isfinite(row["val_accuracy"])
                            else float(row["val_loss"])),
               "accuracy": float(row["accuracy"]),
               "val_accuracy": float(final) - 0.1 * (3 - e) if np.isfinite(row["val_accuracy"]) else math.nan,
               "seconds": 0.1} for e in (1, 2, 3)]
    (sim / "history.json").write_text(json.dumps(epochs))
    if result:
        record = {name: row[name].item() for name, _ in RESULT_DTYPE if name in row.dtype.names}
        (sim / "result.json").write_text(json.dumps(record))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("analysis") / "run", synthetic_rows())


@pytest.fixture(scope="module")
def full_analysis(full_run):
    runs = load_runs([full_run])
    return runs, analyse(runs, draw=False)


def effect(table, task, architecture):
    return table[(table["task"] == task) & (table["architecture"] == architecture)].iloc[0]


def pair(table, task, a, b):
    return table[(table["task"] == task) & (table["architecture_a"] == a) & (table["architecture_b"] == b)].iloc[0]


def test_metric_is_chosen_per_task(full_analysis):
    _, analysis = full_analysis
    metrics = analysis.table("metrics").set_index("task")
    assert metrics.loc["adding-none-False", "metric"] == "val_loss"
    assert metrics.loc["adding-none-False", "direction"] == "lower is better"
    assert (metrics.drop("adding-none-False")["metric"] == "val_accuracy").all()


def test_best_hyperparameters_recovered(full_analysis):
    _, analysis = full_analysis
    best = analysis.table("best_hyperparameters")
    assert len(best) == len(TASKS) * len(ARCHITECTURES)
    assert (best["learning_rate"] == BEST[0]).all() and (best["hidden_dim"] == BEST[1]).all()
    assert (best["n"] == REPLICATES).all() and (best["configurations"] == 4).all()
    assert np.allclose(best["std"], NOISE_SD)
    for row in best.itertuples():
        assert row.mean == pytest.approx(expected_value(row.task, row.architecture, *BEST))


def test_architecture_effects_recover_the_known_differences(full_analysis):
    _, analysis = full_analysis
    effects = analysis.table("architecture_effects")
    assert {"task", "architecture", "estimate", "std_error", "p_value", "n"} <= set(effects.columns)
    assert set(effects["reference"]) == {"rnn"}
    standard_error = NOISE_SD * math.sqrt(2 / REPLICATES)  # difference of two means, pooled sd = NOISE_SD
    known = {("digits-none-False", "lstm"): 0.1, ("digits-none-False", "gru"): 0.0,
             ("digits-post-True", "lstm"): 0.0, ("digits-post-True", "gru"): 0.0,
             ("digits-uniform-False", "gru"): bonferroni_margin(), ("adding-none-False", "lstm"): -0.05}
    for (task, architecture), difference in known.items():
        row = effect(effects, task, architecture)
        assert row["std_error"] == pytest.approx(standard_error, rel=1e-6)
        assert abs(row["estimate"] - difference) < row["std_error"]
        assert row["n"] == REPLICATES
    assert effect(effects, "digits-none-False", "lstm")["p_value"] < 1e-10
    assert effect(effects, "digits-post-True", "lstm")["p_value"] > 0.5
    intercept = effect(effects, "digits-none-False", "rnn")
    assert intercept["term"] == "intercept" and intercept["estimate"] == pytest.approx(0.6)


def test_pairwise_bonferroni_counts(full_analysis):
    _, analysis = full_analysis
    pairs = analysis.table("pairwise")
    assert len(pairs) == len(TASKS) * 3
    assert pairs.groupby("task")["significant"].sum().to_dict() == {
        "digits-none-False": 2, "digits-post-True": 0, "digits-uniform-False": 0, "adding-none-False": 2}
    marginal = pair(pairs, "digits-uniform-False", "gru", "rnn")
    assert marginal["p_value"] == pytest.approx(0.03, rel=1e-6)  # significant alone ...
    assert marginal["p_bonferroni"] == pytest.approx(0.09, rel=1e-6) and not marginal["significant"]  # ... not after
    assert pair(pairs, "adding-none-False", "lstm", "rnn")["better"] == "lstm"  # lower loss is better
    assert pair(pairs, "digits-none-False", "gru", "lstm")["better"] == "lstm"

    proportions = analysis.table("pairwise_proportions").set_index(["architecture_a", "architecture_b"])
    assert proportions.loc[("gru", "lstm")][["tasks", "significant", "b_better"]].tolist() == [4, 2, 2]
    assert proportions.loc[("lstm", "rnn")][["significant", "a_better"]].tolist() == [2, 2]
    assert proportions.loc[("gru", "rnn"), "proportion"] == 0
    assert proportions.loc[("lstm", "rnn"), "proportion"] == 0.5


def test_counts_learning_curves_and_divergence(full_analysis):
    runs, analysis = full_analysis
    assert analysis.counts["ok"] == ALL_POINTS and analysis.counts["missing"] == 0
    assert runs.expected == ALL_POINTS  # from spec.yaml
    curves = analysis.table("learning_curves")
    row = effect(curves, "digits-none-False", "lstm")
    assert row["epochs"] == 3 and row["best_epoch"] == 3 and row["trainings"] == REPLICATES
    assert row["last_epoch_mean"] == pytest.approx(0.7) and row["first_epoch_mean"] == pytest.approx(0.5)
    assert effect(curves, "adding-none-False", "lstm")["best_epoch"] == 3  # lowest val_loss at the end
    assert analysis.curve_task.startswith("digits")  # a classification task by default
    assert (analysis.table("divergence")["divergence_rate"] == 0).all()
    assert any("adjoint" in note for note in analysis.notes)  # no adjoint columns: skipped, said so


def test_diverged_and_failed_trainings_are_counted_not_compared(tmp_path):
    H = synthetic_rows()
    lstm_best = np.flatnonzero((H["architecture"] == "lstm") & (H["dataset"] == "digits") & (H["orientation"] == "none")
                               & (H["learning_rate"] == BEST[0]) & (H["hidden_dim"] == BEST[1]))
    H["status"][lstm_best[:2]] = "diverged"
    H["loss"][lstm_best[:2]] = np.nan
    H["val_accuracy"][lstm_best[:2]] = 0.01  # whatever a diverged training last reported: not compared
    H["status"][lstm_best[2]] = "failed"
    H["status"][lstm_best[3]] = "timeout"
    analysis = analyse(load_runs([write_run(tmp_path / "run", H, curves=False)]), draw=False)
    assert {k: analysis.counts[k] for k in ("ok", "diverged", "failed", "timeout")} == {
        "ok": ALL_POINTS - 4, "diverged": 2, "failed": 1, "timeout": 1}
    rates = effect(analysis.table("divergence"), "digits-none-False", "lstm")
    assert rates["finished"] == 40 and rates["diverged"] == 2 and rates["divergence_rate"] == pytest.approx(0.05)
    best = effect(analysis.table("best_hyperparameters"), "digits-none-False", "lstm")
    assert best["n"] == REPLICATES - 4 and best["learning_rate"] == BEST[0]
    assert effect(analysis.table("architecture_effects"), "digits-none-False", "lstm")["n"] == REPLICATES - 4


def test_killed_run_partial_save_analyses(tmp_path):
    H = synthetic_rows()
    keep = len(H) // 2
    H = H[:keep]
    H["sim_ended"][keep - 20:] = False  # running or never run when the manager was killed
    H["status"][keep - 20:] = ""
    run = write_run(tmp_path / "killed", H, curves=False)
    late = H[keep - 1].copy()  # finished after the last save: only its result.json knows
    late["status"] = "ok"
    write_sim(run, late)
    write_sim(run, synthetic_rows()[keep], result=False)  # started, not in the saved history, no result

    runs = load_runs([run])
    counts = status_counts(runs)
    assert counts["finished"] == keep - 20 + 1
    assert counts["unfinished"] == 19 + 1
    assert counts["not_started"] == ALL_POINTS - keep - 1
    assert counts["missing"] == ALL_POINTS - counts["finished"]
    assert any("after the last save" in note for note in runs.notes)
    analysis = analyse(runs, draw=False)
    assert not analysis.table("best_hyperparameters").empty
    curves = analysis.table("learning_curves")  # only the late training's per-epoch records are there
    assert curves[["task", "architecture", "trainings"]].values.tolist() == [["digits-post-True", "gru", 1]]

    report = status_report(run)
    assert f"[{keep - 19}/{ALL_POINTS} trainings finished]" in report
    assert "1 started without a result yet" in report


def test_run_with_nothing_finished_yet_reports_counts(tmp_path, capsys):
    H = synthetic_rows()[:6]
    H["sim_ended"], H["status"] = False, ""
    run = write_run(tmp_path / "started", H, curves=False)
    assert main([str(run), "--out", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "index.html").read_text()
    assert "nothing to compare yet" in page and "<td>unfinished</td><td class=\"num\">6</td>" in page
    assert "0 trainings finished" in capsys.readouterr().out


def test_run_without_history_reads_the_sim_records(tmp_path):
    run = tmp_path / "early"
    run.mkdir()
    (run / "spec.yaml").write_text(spec_text())
    for row in synthetic_rows()[:5]:
        write_sim(run, row)
    runs = load_runs([run])
    assert status_counts(runs)["finished"] == 5
    assert any("no history.npy yet" in note for note in runs.notes)


def bad_history(tmp_path, kind: str):
    run = tmp_path / kind
    run.mkdir()
    path = run / "history.npy"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(b"this is not numpy at all\n" * 10)
    elif kind == "truncated":
        np.save(path, synthetic_rows())
        path.write_bytes(path.read_bytes()[:5000])
    elif kind == "plain":
        np.save(path, np.arange(10.0))
    elif kind == "nohistory":
        path.unlink(missing_ok=True)
    return run


@pytest.mark.parametrize("kind, message", [
    ("empty", "is empty"), ("garbage", "cannot be read"), ("truncated", "cannot be read"),
    ("plain", "not a structured history"), ("nohistory", "no history.npy and no sims"),
])
def test_bad_input_gives_a_clear_error(tmp_path, capsys, kind, message):
    run = bad_history(tmp_path, kind)
    assert main([str(run), "--out", str(tmp_path / "report")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("analysis: error:") and message in error and "Traceback" not in error
    assert main([str(run), "--status"]) == 2


def test_bad_input_from_the_command_line(tmp_path):
    run = bad_history(tmp_path, "empty")
    result = run_command(["python", "-m", "analysis", str(run)], timeout=120)
    assert result.returncode == 2
    assert "is empty" in result.stderr and "Traceback" not in result.stderr
    missing = run_command(["python", "-m", "analysis", "--csv", str(tmp_path / "none.csv")], timeout=120)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_markdown_output(full_run, capsys):
    assert main([str(full_run), "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    assert "## Architecture effects per task" in text and "## Best hyperparameters" in text
    assert "| task | architecture | term | estimate | std_error | p_value |" in text
    assert "| adding-none-False | val_loss | lower is better |" in text
    assert not (full_run / "analysis").exists()  # markdown without --out writes nothing


def test_html_report_with_figures_and_csv(full_run, tmp_path):
    out = tmp_path / "report"
    assert main([str(full_run), "--out", str(out), "--task", "adding-none-False"]) == 0
    page = (out / "index.html").read_text()
    for name in ("architecture_effects", "metric_by_architecture", "learning_curves", "pairwise_proportions"):
        png = out / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert page.count("data:image/png;base64,") == 4  # embedded: the page stands alone
    assert "Learning curves: adding-none-False" in page
    assert "name: synthetic" in page and "statsmodels" in page  # the spec and software versions
    for name in ("best_hyperparameters", "architecture_effects", "pairwise", "pairwise_proportions", "divergence"):
        assert (out / f"{name}.csv").exists()
    header = (out / "architecture_effects.csv").read_text().splitlines()[0]
    assert header.startswith("task,architecture,term,estimate,std_error,p_value,n")


def test_csv_input_gives_the_same_tables(full_run, full_analysis, tmp_path):
    columns = [name for name, _ in point_dtype() + RESULT_DTYPE if name not in ADJOINT_FIELDS]
    H = np.load(full_run / "history.npy")
    import pandas as pd

    table = pd.DataFrame({name: H[name] for name in columns}).drop(columns=["pad", "status"])
    table.to_csv(tmp_path / "t.csv", index=False)
    from_csv = analyse(load_csv(tmp_path / "t.csv"), draw=False)
    _, from_run = full_analysis
    for name in ("best_hyperparameters", "architecture_effects"):
        left, right = from_csv.table(name), from_run.table(name)
        assert left[["task", "architecture"]].equals(right[["task", "architecture"]])
        assert np.allclose(left["mean" if name.startswith("best") else "estimate"],
                           right["mean" if name.startswith("best") else "estimate"])
    assert main(["--csv", str(tmp_path / "t.csv"), "--format", "markdown"]) == 0


def test_minimal_csv_without_hyperparameters(tmp_path, capsys):
    rows = ["architecture,dataset,val_accuracy"] + [f"{a},mnist,{v}" for a, v in
                                                    [("rnn", 0.5), ("rnn", 0.52), ("lstm", 0.6), ("lstm", 0.62)]]
    (tmp_path / "min.csv").write_text("\n".join(rows) + "\n")
    assert main(["--csv", str(tmp_path / "min.csv"), "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    assert "| mnist-none-False | lstm | lstm - rnn | 0.1 |" in text and "no learning_rate, hidden_dim, epochs" in text


def test_status_of_a_run_that_has_not_finished_anything(tmp_path):
    run = tmp_path / "fresh"
    (run / "sims").mkdir(parents=True)
    (run / "spec.yaml").write_text(spec_text())
    assert f"[0/{ALL_POINTS} trainings finished]" in status_report(run)


def test_merged_runs_count_each_training_once(tmp_path, full_analysis):
    H = synthetic_rows()
    first = write_run(tmp_path / "a", H[: len(H) // 2 + 10], curves=False)
    second = write_run(tmp_path / "b", H[len(H) // 2:], curves=False)
    runs = load_runs([first, second])
    assert len(runs.frame) == len(H) and any("more than one run" in note for note in runs.notes)
    merged = analyse(runs, draw=False).table("architecture_effects")
    assert np.allclose(merged["estimate"], full_analysis[1].table("architecture_effects")["estimate"])


def test_asha_chains_use_the_highest_rung(tmp_path):
    """Rows of an asha run: a configuration per rung (1 then 3 epochs, the 3-epoch row continuing
    the 1-epoch one) and finalist replicates from scratch at 3 epochs."""
    H = synthetic_rows()
    H = H[(H["dataset"] == "digits") & (H["orientation"] == "none")]
    first_rung = H[H["replicate"] == 0].copy()
    first_rung["epochs"] = first_rung["epochs_completed"] = 1
    first_rung["val_accuracy"] -= 0.3
    first_rung["identifier"] = [f"a{i[1:]}" for i in first_rung["identifier"]]
    promoted = (H["replicate"] == 0) & (H["learning_rate"] == BEST[0])  # half the configurations reach rung 2
    H["resume_from"][promoted] = [f"a{i[1:]}" for i in H["identifier"][promoted]]
    pruned = (H["replicate"] == 0) & ~promoted
    finalists = (H["replicate"] > 0) & (H["learning_rate"] == BEST[0])
    rows = np.concatenate([first_rung, H[promoted], H[finalists]])
    run = write_run(tmp_path / "asha", rows, spec_text(kind="asha"), curves=False)

    runs = load_runs([run])
    assert runs.adaptive and runs.expected is None
    final = final_rows(runs.frame)
    assert len(final) == len(first_rung) + finalists.sum()  # one row per chain
    assert set(final.loc[final["replicate"] == 0, "epochs"]) == {1, 3}
    analysis = analyse(runs, draw=False)
    best = analysis.table("best_hyperparameters")
    assert (best["learning_rate"] == BEST[0]).all() and (best["hidden_dim"] == BEST[1]).all()
    assert (best["epochs"] == 3).all() and (best["n"] == REPLICATES).all()
    rungs = analysis.table("rungs").set_index("epochs")
    assert rungs.loc[1, "trainings"] == len(first_rung) and rungs.loc[3, "promoted_from_lower_rung"] == promoted.sum()
    budget = analysis.table("epochs_budget").iloc[0]
    assert budget["configurations"] == len(first_rung) and budget["grid_epochs"] == len(first_rung) * 3 * REPLICATES
    trained = len(first_rung) * 1 + promoted.sum() * 2 + finalists.sum() * 3
    assert budget["epochs_trained"] == trained
    assert pruned.sum() > 0 and any("highest rung" in note for note in analysis.notes)


def test_adjoint_norms_are_summarised_when_recorded(tmp_path):
    run = write_run(tmp_path / "adjoint", synthetic_rows(adjoints=True), curves=False)
    analysis = analyse(load_runs([run]), draw=False)
    table = analysis.table("adjoint_norms")
    row = effect(table, "digits-none-False", "lstm")
    assert row["log10_initial_over_terminal"] == pytest.approx(-2.0)  # initial 1e-2, terminal 1
    assert row["n"] == len(LEARNING_RATES) * len(HIDDEN_DIMS) * REPLICATES


def test_errors_name_the_problem():
    with pytest.raises(AnalysisError, match="at least one RUN_DIR"):
        load_runs([])
