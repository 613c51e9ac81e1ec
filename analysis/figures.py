"""The report's figures (matplotlib, Agg: no display needed). Each function draws one figure and
returns it; ``save`` writes it as PNG. Tasks are laid out as the study's facets: one row per
dataset, one column per variation (orientation and permutation)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.metrics import Metric, lower_is_better
from hypers.fields import ORIENTATIONS

PANEL = (2.9, 2.3)  # inches per facet
# analysis.loading.task_name's keys: dataset-orientation-permute[-corruption[@held-out corruption]]
TASK_KEY = re.compile(rf"^(?P<dataset>.+)-(?P<orientation>{'|'.join(ORIENTATIONS)})-(?P<permute>True|False)"
                      r"(?:-(?P<corruption>[^-]+))?$")


def split_task(task: str) -> tuple[str, str]:
    """``mnist-post-True`` -> (``mnist``, ``post, permuted``); ``digits-none-False-rotate@blur`` ->
    (``digits``, ``no padding, rotate@blur``)."""
    key = TASK_KEY.match(task)
    if key is None:
        return task, ""
    variation = key["orientation"] if key["orientation"] != "none" else "no padding"
    variation += ", permuted" if key["permute"] == "True" else ""
    return key["dataset"], variation + (f", {key['corruption']}" if key["corruption"] else "")


def architecture_colors(names) -> dict[str, tuple]:
    ordered = sorted(set(names), key=lambda name: (name != "rnn", name))
    palette = plt.get_cmap("tab10").colors
    return {name: palette[number % len(palette)] for number, name in enumerate(ordered)}


def _ordered(names) -> list[str]:
    return sorted(set(names), key=lambda name: (name != "rnn", name))


def task_grid(tasks, title: str):
    """A figure with one axis per task: rows are datasets, columns variations. Returns (figure,
    {task: axis}); unused cells are hidden."""
    tasks = sorted(set(tasks))
    datasets = sorted({split_task(task)[0] for task in tasks})
    variations = sorted({split_task(task)[1] for task in tasks},
                        key=lambda v: (v.replace(", permuted", "") != "no padding", v))
    figure, axes = plt.subplots(
        len(datasets), len(variations), squeeze=False,
        figsize=(max(PANEL[0] * len(variations), 5.0), PANEL[1] * len(datasets) + 0.8),
    )
    placed = {}
    for row, dataset in enumerate(datasets):
        for column, variation in enumerate(variations):
            axis = axes[row][column]
            matches = [task for task in tasks if split_task(task) == (dataset, variation)]
            if not matches:
                axis.set_visible(False)
                continue
            placed[matches[0]] = axis
            axis.set_title(f"{dataset} | {variation}", fontsize=9)
            axis.tick_params(labelsize=8)
            axis.grid(axis="y", alpha=0.3)
    width = figure.get_size_inches()[0]
    figure.suptitle(textwrap.fill(title, int(width * 11)), fontsize=11)
    return figure, placed


def coefficient_bars(effects: pd.DataFrame):
    """Each architecture's difference from the reference (rnn) per task, error bars ±1 standard error."""
    differences = effects[effects["term"] != "intercept"]
    figure, axes = task_grid(differences["task"], "Architecture effects: difference from the reference architecture "
                                                  "(best hyperparameters, ±1 standard error)")
    colors = architecture_colors(effects["architecture"])
    for task, axis in axes.items():
        rows = differences[differences["task"] == task]
        rows = rows.set_index("architecture").loc[_ordered(rows["architecture"])]
        positions = np.arange(len(rows))
        errors = rows["std_error"].fillna(0).to_numpy()
        axis.bar(positions, rows["estimate"], yerr=errors, capsize=3,
                 color=[colors[name] for name in rows.index], edgecolor="black", linewidth=0.5)
        axis.axhline(0, color="black", linewidth=0.8)
        axis.set_xticks(positions, rows.index, rotation=30, ha="right")
        reference, metric = rows["reference"].iloc[0], rows["metric"].iloc[0]
        axis.set_ylabel(f"Δ {metric} vs {reference} ({'↓' if lower_is_better(metric) else '↑'} better)", fontsize=8)
    figure.tight_layout()
    return figure


def metric_by_architecture(ok_rows: pd.DataFrame, best: pd.DataFrame, metrics: dict[str, Metric]):
    """Per task: every ok training's metric per architecture (boxes, all hyperparameters) and
    the trainings of the best hyperparameters (dots)."""
    figure, axes = task_grid(best["task"], "Validation metric by architecture: all hyperparameters (boxes), "
                                           "best hyperparameters (dots)")
    colors = architecture_colors(ok_rows["architecture"])
    groups = {key: group["value"] for key, group in ok_rows.groupby(["task", "architecture"])}
    winners = {key: group["value"] for key, group in best.groupby(["task", "architecture"])}
    for task, axis in axes.items():
        names = _ordered(name for key_task, name in groups if key_task == task)
        axis.boxplot([groups[task, name] for name in names], positions=range(len(names)), widths=0.6, showfliers=False,
                     medianprops={"color": "grey"}, boxprops={"color": "grey"}, whiskerprops={"color": "grey"})
        for position, name in enumerate(names):
            values = winners.get((task, name), pd.Series(dtype=float))
            jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(len(values))
            axis.scatter(position + jitter, values, s=14, color=colors[name], edgecolor="black", linewidth=0.4,
                         zorder=3)
        axis.set_xticks(range(len(names)), names, rotation=30, ha="right")
        metric = metrics[task]
        axis.set_ylabel(f"{metric.name} ({'↑' if metric.higher_is_better else '↓'})", fontsize=8)
    figure.tight_layout()
    return figure


def learning_curves(curves: pd.DataFrame, task: str, metric: Metric):
    """One task: the metric and the training loss per epoch, mean ± std over the best
    hyperparameters' trainings of each architecture."""
    rows = curves[curves["task"] == task]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    colors = architecture_colors(rows["architecture"])
    for name in _ordered(rows["architecture"]):
        curve = rows[rows["architecture"] == name].sort_values("epoch")
        left.plot(curve["epoch"], curve["mean"], marker="o", markersize=3, color=colors[name], label=name)
        spread = curve["std"].fillna(0)
        left.fill_between(curve["epoch"], curve["mean"] - spread, curve["mean"] + spread, color=colors[name],
                          alpha=0.15)
        right.plot(curve["epoch"], curve["loss_mean"], marker="o", markersize=3, color=colors[name], label=name)
    left.set_xlabel("epoch")
    left.set_ylabel(f"{metric.name} ({metric.direction}), mean ± std")
    right.set_xlabel("epoch")
    right.set_ylabel("training loss, mean")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.xaxis.get_major_locator().set_params(integer=True)
    left.legend(fontsize=8)
    figure.suptitle(f"Learning curves on {task} (best hyperparameters per architecture)", fontsize=11)
    figure.tight_layout()
    return figure


def adjoint_scatter(rows: pd.DataFrame, metrics: dict[str, Metric]):
    """Per task: the ratio of the initial to the terminal adjoint norm (how much of the gradient
    signal reaches the first time step; log scale) against the metric, one colour per architecture."""
    ratio = rows["initial_adjoint"].astype(float) / rows["terminal_adjoint"].astype(float)
    data = rows.assign(ratio=ratio)[np.isfinite(ratio) & (ratio > 0)]
    title = "Adjoint norm ratio (initial / terminal) vs validation metric (ok trainings)"
    figure, axes = task_grid(data["task"], title)
    colors = architecture_colors(data["architecture"])
    for task, axis in axes.items():
        for name in _ordered(data.loc[data["task"] == task, "architecture"]):
            points = data[(data["task"] == task) & (data["architecture"] == name)]
            axis.scatter(points["ratio"], points["value"], s=10, alpha=0.7, color=colors[name], label=name)
        axis.set_xscale("log")
        axis.set_xlabel("initial / terminal adjoint norm", fontsize=8)
        axis.set_ylabel(metrics[task].name, fontsize=8)
    if axes:
        next(iter(axes.values())).legend(fontsize=7)
    figure.tight_layout()
    return figure


def proportion_heatmap(matrix: pd.DataFrame):
    """Share of tasks in which two architectures differ significantly (Bonferroni, p < 0.05)."""
    size = max(3.5, 0.7 * len(matrix) + 2)
    figure, axis = plt.subplots(figsize=(size, size * 0.85))
    image = axis.imshow(matrix.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis")
    axis.set_xticks(range(len(matrix)), matrix.columns, rotation=30, ha="right")
    axis.set_yticks(range(len(matrix)), matrix.index)
    for i in range(len(matrix)):
        for j in range(len(matrix)):
            value = matrix.iat[i, j]
            if np.isfinite(value):
                axis.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                          color="white" if value < 0.6 else "black")
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    axis.set_title("Share of tasks with a significant difference\n(pairwise t-tests, Bonferroni, p < 0.05)",
                   fontsize=10)
    figure.tight_layout()
    return figure


def save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
