"""Descriptive tables: best hyperparameters, divergence rates, learning curves, adjoint norms,
adaptive-search rungs. Each returns a DataFrame with plain column names (written as CSV)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.loading import ADJOINT_COLUMNS, resolve_chains
from analysis.metrics import Metric
from simulators.records import Status

# The hyperparameters searched per (architecture, task); batch_size and pad join them when a
# run varies them within a task.
HYPERPARAMETERS = ("learning_rate", "hidden_dim", "epochs")
OPTIONAL_HYPERPARAMETERS = ("batch_size", "pad")


def hyperparameters(rows: pd.DataFrame) -> list[str]:
    names = [name for name in HYPERPARAMETERS if name in rows]
    for name in OPTIONAL_HYPERPARAMETERS:
        if name in rows and rows.groupby("task")[name].nunique().max() > 1:
            names.append(name)
    return names


def analysed(rows: pd.DataFrame, metrics: dict[str, Metric]) -> pd.DataFrame:
    """Rows that enter the comparisons: status ok and a finite value of their task's metric."""
    ok = rows[(rows["status"] == Status.OK) & rows["task"].isin(metrics)].copy()
    ok["metric"] = ok["task"].map({task: metric.name for task, metric in metrics.items()})
    ok["value"] = np.nan
    for name in ok["metric"].unique():
        chosen = ok["metric"] == name
        ok.loc[chosen, "value"] = pd.to_numeric(ok.loc[chosen, name], errors="coerce").astype(float)
    return ok[np.isfinite(ok["value"].astype(float))]


def best_hyperparameters(rows: pd.DataFrame, metrics: dict[str, Metric]) -> pd.DataFrame:
    """Per (task, architecture) the hyperparameters whose mean metric over replicates is best
    (ties: more replicates, then the order of the values), with mean, std and n."""
    data = analysed(rows, metrics)
    names = hyperparameters(data)
    records = []
    for (task, architecture), group in data.groupby(["task", "architecture"], sort=True):
        metric = metrics[task]
        keys = names or [np.zeros(len(group))]  # no hyperparameter columns (a CSV): all rows one configuration
        summary = group.groupby(keys, dropna=False)["value"].agg(["mean", "std", "count"]).reset_index(drop=not names)
        summary = summary.sort_values(
            ["mean", "count"], ascending=[not metric.higher_is_better, False], kind="stable"
        )
        best = summary.iloc[0]
        records.append({
            "task": task, "architecture": architecture, **{name: best[name] for name in names},
            "metric": metric.name, "mean": best["mean"], "std": best["std"], "n": int(best["count"]),
            "configurations": len(summary),
        })
    columns = ["task", "architecture", *names, "metric", "mean", "std", "n", "configurations"]
    table = pd.DataFrame(records, columns=columns)
    for name in ("hidden_dim", "epochs", "batch_size", "pad"):
        if name in table:
            table[name] = table[name].astype("int64")
    return table


def best_runs(rows: pd.DataFrame, metrics: dict[str, Metric], best: pd.DataFrame) -> pd.DataFrame:
    """The trainings of each (task, architecture)'s best hyperparameters: what the models compare."""
    data = analysed(rows, metrics)
    if best.empty:
        return data.iloc[:0]
    keys = ["task", "architecture", *[name for name in hyperparameters(data) if name in best]]
    return data.merge(best[keys], on=keys, how="inner")


def status_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Trainings per status, per architecture and task (every row, finished or not)."""
    table = pd.crosstab([frame["task"], frame["architecture"]], frame["status"]).reset_index()
    table.columns.name = None
    return table


def divergence_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Per architecture and task: finished trainings and the share that diverged, failed or timed out."""
    finished = frame[frame["finished"]]
    records = []
    for (task, architecture), group in finished.groupby(["task", "architecture"], sort=True):
        n = len(group)
        counts = {status.value: int((group["status"] == status).sum()) for status in Status}
        records.append({"task": task, "architecture": architecture, "finished": n, **counts,
                        "divergence_rate": counts[Status.DIVERGED] / n if n else np.nan})
    columns = ["task", "architecture", "finished", *(status.value for status in Status), "divergence_rate"]
    return pd.DataFrame(records, columns=columns)


def divergence_by_architecture(rates: pd.DataFrame) -> pd.DataFrame:
    problems = [status.value for status in Status if status != Status.OK]
    totals = rates.groupby("architecture")[["finished", *problems]].sum().reset_index()
    totals["divergence_rate"] = totals["diverged"] / totals["finished"].where(totals["finished"] > 0)
    return totals


def learning_curves(epochs: pd.DataFrame, metrics: dict[str, Metric]) -> pd.DataFrame:
    """Mean, std and n of each task's metric (and the training loss) per architecture and epoch."""
    records = []
    for (task, architecture), group in epochs.groupby(["task", "architecture"], sort=True):
        metric = metrics.get(task)
        if metric is None or metric.name not in group:
            continue
        for epoch, rows in group.groupby("epoch", sort=True):
            values = rows[metric.name].replace([np.inf, -np.inf], np.nan).dropna()
            loss = rows["loss"] if "loss" in rows else pd.Series(dtype=float)
            loss = loss.replace([np.inf, -np.inf], np.nan).dropna()
            record = {"task": task, "architecture": architecture, "epoch": int(epoch), "metric": metric.name,
                      "mean": values.mean(), "std": values.std(), "n": len(values), "loss_mean": loss.mean()}
            for name in adjoint_columns(rows):  # per-epoch adjoint norms, when the trainer records them
                record[f"{name}_median"] = rows[name].astype(float).median()
            records.append(record)
    columns = ["task", "architecture", "epoch", "metric", "mean", "std", "n", "loss_mean"]
    frame = pd.DataFrame(records)
    if not records:
        return pd.DataFrame(columns=columns)
    return frame[columns + [name for name in frame.columns if name not in columns]]


def learning_curve_summary(curves: pd.DataFrame, metrics: dict[str, Metric]) -> pd.DataFrame:
    """Per task and architecture: the metric after the first and the last epoch, and the epoch of the best mean."""
    records = []
    for (task, architecture), group in curves.groupby(["task", "architecture"], sort=True):
        group = group.dropna(subset=["mean"]).sort_values("epoch")
        if group.empty:
            continue
        metric = metrics[task]
        best = group.loc[metric.best_index(group["mean"])]
        records.append({"task": task, "architecture": architecture, "metric": metric.name,
                        "epochs": int(group["epoch"].max()), "first_epoch_mean": group["mean"].iloc[0],
                        "last_epoch_mean": group["mean"].iloc[-1], "best_epoch": int(best["epoch"]),
                        "best_epoch_mean": best["mean"], "trainings": int(group["n"].max())})
    columns = ["task", "architecture", "metric", "epochs", "first_epoch_mean", "last_epoch_mean", "best_epoch",
               "best_epoch_mean", "trainings"]
    return pd.DataFrame(records, columns=columns)


def adjoint_columns(rows: pd.DataFrame) -> list[str]:
    """The adjoint-norm columns with at least one finite value."""
    return [name for name in ADJOINT_COLUMNS
            if name in rows and np.isfinite(pd.to_numeric(rows[name], errors="coerce")).any()]


def adjoint_summary(rows: pd.DataFrame, metrics: dict[str, Metric]) -> pd.DataFrame | None:
    """Per task and architecture: median initial and terminal adjoint norms, the median of
    log10(initial / terminal) (negative: the gradient signal fades on its way back to the first
    step) and the Spearman correlation of that ratio with the task's metric. None without
    adjoint data."""
    if not {"initial_adjoint", "terminal_adjoint"} <= set(adjoint_columns(rows)):
        return None
    data = analysed(rows, metrics)
    records = []
    for (task, architecture), group in data.groupby(["task", "architecture"], sort=True):
        initial, terminal = group["initial_adjoint"].astype(float), group["terminal_adjoint"].astype(float)
        valid = np.isfinite(initial) & np.isfinite(terminal) & (initial > 0) & (terminal > 0)
        if not valid.any():
            continue
        ratio = np.log10(initial[valid] / terminal[valid])
        values = group.loc[valid, "value"]
        varies = valid.sum() > 2 and ratio.nunique() > 1 and values.nunique() > 1
        correlation = ratio.corr(values, method="spearman") if varies else np.nan
        records.append({"task": task, "architecture": architecture, "metric": metrics[task].name, "n": int(valid.sum()),
                        "initial_adjoint_median": initial[valid].median(),
                        "terminal_adjoint_median": terminal[valid].median(),
                        "log10_initial_over_terminal": ratio.median(), "spearman_ratio_vs_metric": correlation})
    return pd.DataFrame(records)


def rung_statistics(frame: pd.DataFrame) -> pd.DataFrame:
    """Adaptive search: trainings per epoch budget (rung), how many were ok, and how many were the
    first replicate (the search itself) or finalist replicates."""
    finished = frame[frame["finished"]]
    records = []
    for epochs, group in finished.groupby("epochs", sort=True):
        records.append({"epochs": int(epochs), "trainings": len(group), "ok": int((group["status"] == Status.OK).sum()),
                        "promoted_from_lower_rung": int((group["resume_from"] != "").sum()),
                        "search_replicate": int((group["replicate"] == 0).sum()),
                        "finalist_replicates": int((group["replicate"] > 0).sum())})
    return pd.DataFrame(records, columns=["epochs", "trainings", "ok", "promoted_from_lower_rung",
                                          "search_replicate", "finalist_replicates"])


def epochs_budget(frame: pd.DataFrame, replicates: int | None = None) -> pd.DataFrame:
    """Epochs the adaptive search trained against the grid over the same configurations: every
    configuration at the full budget with every replicate. A promoted training continues from its
    parent's checkpoint, so only its epochs beyond the parent's count."""
    finished = frame[frame["finished"]].copy()
    if finished.empty:
        return pd.DataFrame()
    completed = dict(zip(finished["identifier"], finished["epochs_completed"]))
    inherited = finished["resume_from"].map(lambda parent: completed.get(parent, 0) if parent else 0)
    trained = int((finished["epochs_completed"] - inherited).clip(lower=0).sum())
    finished["chain"] = resolve_chains(frame).loc[finished.index]
    first = finished[finished["replicate"] == 0]
    configurations = first["chain"].nunique()
    full = int(finished["epochs"].max())
    replicates = replicates or int(finished["replicate"].max()) + 1
    grid = configurations * full * replicates
    return pd.DataFrame([{
        "configurations": configurations, "full_budget_epochs": full, "replicates": replicates,
        "epochs_trained": trained, "grid_epochs": grid, "fraction_of_grid": trained / grid if grid else np.nan,
    }])
