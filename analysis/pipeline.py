"""From loaded runs to the report's content: every table and figure, in report order, with notes
on what was chosen or skipped and why. The prose is in texts.py; rendering and writing files is
report.py's job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from analysis import compositions, figures, statistics, tables, texts
from analysis.loading import AnalysisError, Runs, epoch_records, final_rows, status_counts
from analysis.metrics import Metric, metrics_by_task, metrics_table
from simulators.records import Status


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
    draw: bool = True  # make the figures (they are only needed when written)

    def table(self, name: str) -> pd.DataFrame | None:
        return next((table.frame for table in self.tables if table.name == name), None)

    def add_table(self, name: str, frame: pd.DataFrame, stem: str | None = None, **values: str) -> None:
        """``stem``: the file name of a kind of table the report has several of (one per composition)."""
        title, description = texts.TABLES[name]
        self.tables.append(Table(stem or name, title.format(**values), description.format(**values), frame))

    def add_figure(self, name: str, draw: Callable[[], object], **values: str) -> None:
        """The figure ``draw()`` makes, when figures are wanted."""
        if self.draw:
            title, description = texts.FIGURES[name]
            self.figures.append(Figure(name, title.format(**values), description.format(**values), draw()))

    def note(self, name: str, **values: str) -> None:
        self.notes.append(texts.NOTES[name].format(**values))


def analyse(runs: Runs, metric: str = "val_accuracy", curve_task: str | None = None, draw: bool = True) -> Analysis:
    result = Analysis(status_counts(runs), notes=list(runs.notes), draw=draw)
    rows = final_rows(runs.frame)
    chosen = _choose_metrics(result, runs, rows, metric, curve_task)
    best, winners = _compare_architectures(result, rows, chosen)
    _compositions(result, tables.analysed(rows, chosen), best)
    _learning_curves(result, winners, chosen, metric, curve_task)
    rates = tables.divergence_rates(rows)
    result.add_table("divergence", rates)
    result.add_table("divergence_by_architecture", tables.divergence_by_architecture(rates))
    _adjoint_norms(result, rows, chosen)
    if runs.adaptive:
        result.add_table("rungs", tables.rung_statistics(runs.frame))
        result.add_table("epochs_budget", tables.epochs_budget(runs.frame))
    result.add_table("status", tables.status_table(runs.frame))
    return result


def _choose_metrics(result: Analysis, runs: Runs, rows: pd.DataFrame, metric: str,
                    curve_task: str | None) -> dict[str, Metric]:
    """Each task's metric (``metric``, or val_loss for a regression), after checking the options."""
    frame = runs.frame
    if runs.adaptive:
        result.note("adaptive")
    if metric not in frame and metric != "val_accuracy":
        raise AnalysisError(f"--metric {metric}: no such column; numeric columns: "
                            f"{sorted(frame.select_dtypes('number').columns)}")
    if curve_task is not None and curve_task not in set(frame["task"]):
        raise AnalysisError(f"--task {curve_task}: no such task; tasks: {', '.join(sorted(set(frame['task'])))}")
    chosen = metrics_by_task(rows[rows["status"] == Status.OK], metric)
    for task in sorted(set(rows["task"]) - set(chosen)):
        result.note("task_without_metric", task=task, metric=metric)
    result.add_table("metrics", metrics_table(chosen, metric), metric=metric)
    if not chosen:
        result.note("nothing_to_compare")
    return chosen


def _compare_architectures(result: Analysis, rows: pd.DataFrame,
                           chosen: dict[str, Metric]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Best hyperparameters, the linear model's architecture effects and the pairwise tests; the
    best hyperparameters and their trainings (the ones compared) are returned."""
    best = tables.best_hyperparameters(rows, chosen)
    result.add_table("best_hyperparameters", best)
    winners = tables.best_runs(rows, chosen, best)
    effects = statistics.architecture_effects(winners, chosen, result.notes)
    result.add_table("architecture_effects", effects)
    pairs = statistics.pairwise_comparisons(winners, chosen)
    result.add_table("pairwise", pairs)
    proportions = statistics.pairwise_proportions(pairs)
    result.add_table("pairwise_proportions", proportions)
    if not effects.empty and (effects["term"] != "intercept").any():
        result.add_figure("architecture_effects", lambda: figures.coefficient_bars(effects))
    if not winners.empty:
        ok_rows = tables.analysed(rows, chosen)
        result.add_figure("metric_by_architecture", lambda: figures.metric_by_architecture(ok_rows, winners, chosen))
    if not proportions.empty:
        matrix = statistics.proportion_matrix(proportions)
        result.add_figure("pairwise_proportions", lambda: figures.proportion_heatmap(matrix))
    return best, winners


def _compositions(result: Analysis, ok_rows: pd.DataFrame, best: pd.DataFrame) -> None:
    """Corrupted studies: seen against held-out compositions, overall and a table per composition."""
    summary = compositions.composition_summary(ok_rows, best)
    if summary.empty:
        return
    result.add_table("compositions", summary)
    for kind, composition, frame in compositions.per_composition(summary):
        result.add_table(kind, frame, stem=f"{kind}_{composition}", composition=composition)


def _learning_curves(result: Analysis, winners: pd.DataFrame, chosen: dict[str, Metric], metric: str,
                     curve_task: str | None) -> None:
    epochs = epoch_records(winners) if "run_dir" in winners and not winners.empty else pd.DataFrame()
    if epochs.empty:
        result.note("no_curves")
        return
    curves = tables.learning_curves(epochs, chosen)
    result.add_table("learning_curves", tables.learning_curve_summary(curves, chosen))
    result.add_table("learning_curves_by_epoch", curves)
    available = sorted(set(curves["task"]))
    task = curve_task if curve_task in available else None
    if curve_task is not None and task is None:
        result.note("curve_task_without_records", task=curve_task, drawn=available[0])
    preferred = [name for name in available if chosen[name].name == metric]  # classification first
    result.curve_task = task = task or (preferred or available)[0]
    result.add_figure("learning_curves", lambda: figures.learning_curves(curves, task, chosen[task]), task=task)


def _adjoint_norms(result: Analysis, rows: pd.DataFrame, chosen: dict[str, Metric]) -> None:
    adjoints = tables.adjoint_summary(rows, chosen)
    if adjoints is None or adjoints.empty:
        result.note("no_adjoints")
        return
    result.add_table("adjoint_norms", adjoints)
    result.add_figure("adjoint_vs_metric", lambda: figures.adjoint_scatter(tables.analysed(rows, chosen), chosen))
