"""Which number ranks the trainings of a task, and in which direction.

Classification tasks are ranked by ``val_accuracy`` (higher is better). A regression task (the
adding problem) has no accuracy: its ``val_accuracy`` is NaN in every row, so it is ranked by
``val_loss`` (its validation MSE; lower is better). The choice is made per task and reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FALLBACK = "val_loss"


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    def best_index(self, values: pd.Series):
        """Index label of the best value (NaN never wins)."""
        return values.idxmax() if self.higher_is_better else values.idxmin()

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b


def lower_is_better(name: str) -> bool:
    return "loss" in name or "error" in name or name.endswith("mse")


def _has_values(rows: pd.DataFrame, name: str) -> bool:
    return name in rows and bool(np.isfinite(pd.to_numeric(rows[name], errors="coerce")).any())


def metric_for(rows: pd.DataFrame, requested: str = "val_accuracy") -> Metric | None:
    """The metric of one task's rows: ``requested`` if any row has a finite value, else val_loss
    (the regression case), else None (nothing to rank)."""
    if _has_values(rows, requested):
        return Metric(requested, not lower_is_better(requested))
    if _has_values(rows, FALLBACK):
        return Metric(FALLBACK, False)
    return None


def metrics_by_task(rows: pd.DataFrame, requested: str = "val_accuracy") -> dict[str, Metric]:
    """task -> its metric, for tasks that have one."""
    chosen = {}
    for task, group in rows.groupby("task", sort=True):
        metric = metric_for(group, requested)
        if metric is not None:
            chosen[task] = metric
    return chosen


def metrics_table(chosen: dict[str, Metric], requested: str) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"task": task, "metric": metric.name, "direction": metric.direction,
             "why": "requested" if metric.name == requested else f"no finite {requested} (regression task)"}
            for task, metric in chosen.items()
        ],
        columns=["task", "metric", "direction", "why"],
    )
