"""From loaded runs to the report's content: every table and figure, in report order, with notes
on what was chosen or skipped and why. Rendering and writing files is report.py's job."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from analysis import compositions, figures, statistics, tables
from analysis.loading import AnalysisError, Runs, epoch_records, final_rows, status_counts
from analysis.metrics import metrics_by_task, metrics_table


@dataclass
class Table:
    name: str  # file stem: <name>.csv
    title: str
    description: str
    frame: pd.DataFrame


@dataclass
class Figure:
    name: str  # file stem: figures/<name>.png
    title: str
    description: str
    figure: object  # a matplotlib figure, until saved


@dataclass
class Analysis:
    counts: dict[str, int]
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    curve_task: str | None = None

    def table(self, name: str) -> pd.DataFrame | None:
        return next((table.frame for table in self.tables if table.name == name), None)


def analyse(runs: Runs, metric: str = "val_accuracy", curve_task: str | None = None, draw: bool = True) -> Analysis:
    frame = runs.frame
    result = Analysis(status_counts(runs), notes=list(runs.notes))
    add_table, add_figure = result.tables.append, result.figures.append

    rows = final_rows(frame)
    if runs.adaptive:
        result.notes.append(
            "adaptive search (asha): a configuration has a row per rung it reached; the tables use, per "
            "chain of promotions (resume_from), the row with the most epochs, i.e. the highest rung reached"
        )
    if metric not in frame and metric != "val_accuracy":
        raise AnalysisError(f"--metric {metric}: no such column; numeric columns: "
                            f"{sorted(frame.select_dtypes('number').columns)}")
    chosen = metrics_by_task(rows[rows["status"] == "ok"], metric)
    for task in sorted(set(rows["task"]) - set(chosen)):
        result.notes.append(f"{task}: no ok training with a finite {metric} or val_loss yet: left out of the comparisons")
    if curve_task is not None and curve_task not in set(frame["task"]):
        raise AnalysisError(f"--task {curve_task}: no such task; tasks: {', '.join(sorted(set(frame['task'])))}")

    add_table(Table("metrics", "Metric per task",
                    f"Trainings are ranked by {metric}; a task without it (a regression: the adding problem) by val_loss, "
                    "lower is better.", metrics_table(chosen, metric)))
    if not chosen:
        result.notes.append("no finished ok trainings with a metric: nothing to compare yet")
    best = tables.best_hyperparameters(rows, chosen)
    add_table(Table("best_hyperparameters", "Best hyperparameters per architecture and task",
                    "The hyperparameters whose mean metric over replicates is best, with mean, std and n (replicates); "
                    "configurations: how many were compared.", best))
    winners = tables.best_runs(rows, chosen, best)

    effects = statistics.architecture_effects(winners, chosen, result.notes)
    add_table(Table("architecture_effects", "Architecture effects per task",
                    "OLS value ~ architecture on the best-hyperparameter trainings, Treatment coding with rnn as the "
                    "reference: the intercept row is rnn's mean; the others the difference from it, with standard error "
                    "and p-value. For val_loss tasks a negative difference is better.", effects))
    pairs = statistics.pairwise_comparisons(winners, chosen)
    add_table(Table("pairwise", "Pairwise architecture comparisons",
                    "t-tests of each pair's difference (a - b) with the model's pooled residual variance; p_bonferroni "
                    "multiplies p by the number of pairs in the task (at most 1); better: the significantly better one.",
                    pairs))
    proportions = statistics.pairwise_proportions(pairs)
    add_table(Table("pairwise_proportions", "Share of tasks with a significant difference",
                    "Per pair: tasks compared, tasks with p_bonferroni < 0.05 and their share; a_better / b_better: "
                    "in how many of them each was the better.", proportions))

    ok_rows = tables.analysed(rows, chosen)
    if draw and not effects.empty and (effects["term"] != "intercept").any():
        add_figure(Figure("architecture_effects", "Architecture effects",
                          "Difference of each architecture's mean from rnn's, per dataset (rows) and variation "
                          "(columns); error bars ±1 standard error.", figures.coefficient_bars(effects)))
    if draw and not winners.empty:
        add_figure(Figure("metric_by_architecture", "Validation metric by architecture",
                          "Boxes: every ok training of the task (all hyperparameters); dots: the trainings of each "
                          "architecture's best hyperparameters.", figures.metric_by_architecture(ok_rows, winners, chosen)))
    if draw and not proportions.empty:
        add_figure(Figure("pairwise_proportions", "Significant pairwise differences",
                          "Share of tasks in which two architectures differ (Bonferroni, p < 0.05).",
                          figures.proportion_heatmap(statistics.proportion_matrix(proportions))))

    _compositions(result, ok_rows, best)
    _learning_curves(result, winners, chosen, metric, curve_task, draw)

    rates = tables.divergence_rates(rows)
    add_table(Table("divergence", "Divergence per architecture and task",
                    "Finished trainings, how they ended, and the share that diverged (non-finite loss).", rates))
    add_table(Table("divergence_by_architecture", "Divergence per architecture", "All tasks together.",
                    tables.divergence_by_architecture(rates)))

    adjoints = tables.adjoint_summary(rows, chosen)
    if adjoints is None or adjoints.empty:
        result.notes.append("no adjoint norms (initial_adjoint, terminal_adjoint) recorded: adjoint tables and figures skipped")
    else:
        add_table(Table("adjoint_norms", "Adjoint norms",
                        "Medians of the initial and terminal adjoint norms over the ok trainings, the median of "
                        "log10(initial / terminal) (negative: the gradient fades on its way back), and the "
                        "Spearman correlation of that ratio with the metric.",
                        adjoints))
        if draw:
            add_figure(Figure("adjoint_vs_metric", "Adjoint norms and accuracy",
                              "Initial over terminal adjoint norm (log scale: below 1, the gradient signal fades "
                              "on its way back to the first step) against the validation metric.",
                              figures.adjoint_scatter(ok_rows, chosen)))

    if runs.adaptive:
        add_table(Table("rungs", "Adaptive search: trainings per epoch budget",
                        "Every finished row, by its epochs (rung): promoted ones continued their parent's checkpoint; "
                        "finalist replicates were trained from scratch at the full budget.", tables.rung_statistics(frame)))
        add_table(Table("epochs_budget", "Adaptive search: epochs trained against the full grid",
                        "grid_epochs: every configuration seen at the full budget with every replicate.",
                        tables.epochs_budget(frame)))
    add_table(Table("status", "Trainings per status", "Every row of the runs, finished or not.", tables.status_table(frame)))
    return result


def _compositions(result: Analysis, ok_rows: pd.DataFrame, best: pd.DataFrame) -> None:
    """Corrupted studies: seen against held-out compositions, overall and a table per composition."""
    summary = compositions.composition_summary(ok_rows, best)
    if summary.empty:
        return
    held_out = "mean, std, n of the metric; held_out: validated on another composition than trained on; gap: mean - "
    held_out += "seen_mean (the same architecture validated on its training composition)"
    result.tables.append(Table("compositions", "Compositions: seen and held out",
                               f"Hyperparameters chosen on the seen validation ({held_out}); chosen_on says where.",
                               summary))
    for name, title, frame in compositions.per_composition(summary):
        result.tables.append(Table(name, title, f"As in Compositions: {held_out}.", frame))


def _learning_curves(result: Analysis, winners: pd.DataFrame, chosen, metric: str, curve_task, draw: bool) -> None:
    epochs = epoch_records(winners) if "run_dir" in winners and not winners.empty else pd.DataFrame()
    if epochs.empty:
        result.notes.append("no per-epoch records (sims/*/history.json) for the best trainings: learning curves skipped")
        return
    curves = tables.learning_curves(epochs, chosen)
    result.tables.append(Table("learning_curves", "Learning curves (summary)",
                               "Best hyperparameters' trainings: the metric's mean after the first and the last epoch, "
                               "and the epoch with the best mean.", tables.learning_curve_summary(curves, chosen)))
    result.tables.append(Table("learning_curves_by_epoch", "Learning curves per epoch",
                               "Mean, std and n of the metric per architecture, task and epoch; loss_mean: training loss; "
                               "*_adjoint_median: per-epoch adjoint norms, when recorded.",
                               curves))
    available = sorted(set(curves["task"]))
    task = curve_task if curve_task in available else None
    if curve_task is not None and task is None:
        result.notes.append(f"--task {curve_task}: no per-epoch records; learning curves drawn for {available[0]}")
    preferred = [name for name in available if chosen[name].name == metric]  # classification first
    task = task or (preferred or available)[0]
    result.curve_task = task
    if draw:
        result.figures.append(Figure("learning_curves", f"Learning curves: {task}",
                                     "Mean ± std over the best hyperparameters' trainings of each architecture "
                                     "(choose the task with --task).", figures.learning_curves(curves, task, chosen[task])))
