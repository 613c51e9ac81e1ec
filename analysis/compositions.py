"""Compositional studies: each architecture on the corruption it trained on (seen) and on held-out
ones, per training composition and per held-out composition.

Hyperparameters are chosen on the seen validation (the best of ``corruption@corruption``) and
that choice's trainings validated on held-out compositions are reported, so no held-out result
picks its own hyperparameters; a training composition never validated on itself is reported
with its own best (``chosen_on: held out``). A training validated on a held-out composition has
the seed of its seen twin (generators/points.py): the gap is one network's, seen against held out.
"""

from __future__ import annotations

import pandas as pd

from analysis.loading import task_name
from analysis.tables import hyperparameters
from simulators.tasks.corruptions import NONE

GROUP = ["dataset", "orientation", "permute", "corruption", "val_corruption", "architecture"]
COLUMNS = [*GROUP, "held_out", "metric", "mean", "std", "n", "seen_mean", "gap", "chosen_on"]


def _chosen(ok_rows: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """The trainings of the hyperparameters chosen on the seen validation (else on their own task)."""
    names = [name for name in hyperparameters(ok_rows) if name in best]
    picks = best[["task", "architecture", *names]]
    rows = ok_rows.assign(seen_task=[task_name(d, o, p, c, c) for d, o, p, c in
                                     zip(ok_rows["dataset"], ok_rows["orientation"], ok_rows["permute"],
                                         ok_rows["corruption"])])
    seen = rows.merge(picks.rename(columns={"task": "seen_task"}), on=["seen_task", "architecture", *names])
    has_seen = pd.MultiIndex.from_frame(rows[["seen_task", "architecture"]]).isin(
        pd.MultiIndex.from_frame(picks[["task", "architecture"]]))
    own = rows[~has_seen].merge(picks, on=["task", "architecture", *names])
    return pd.concat([seen.assign(chosen_on="seen"), own.assign(chosen_on="held out")], ignore_index=True)


def composition_summary(ok_rows: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """Per task variation, training composition, validation composition and architecture: mean,
    std and n of the metric, whether the validation was held out, and the gap to the seen mean."""
    corrupted = ok_rows[(ok_rows["corruption"] != NONE) | (ok_rows["val_corruption"] != NONE)]
    if corrupted.empty or best.empty:
        return pd.DataFrame(columns=COLUMNS)
    chosen = _chosen(ok_rows, best)  # uncorrupted trainings too: the study's clean baseline
    if chosen.empty:
        return pd.DataFrame(columns=COLUMNS)
    table = chosen.groupby([*GROUP, "metric", "chosen_on"], sort=True)["value"].agg(["mean", "std", "count"])
    table = table.reset_index().rename(columns={"count": "n"})
    table["held_out"] = table["val_corruption"] != table["corruption"]
    trained = ["dataset", "orientation", "permute", "corruption", "architecture"]
    seen = table[~table["held_out"]].set_index(trained)["mean"]
    table["seen_mean"] = seen.reindex(pd.MultiIndex.from_frame(table[trained])).to_numpy()
    table["gap"] = table["mean"] - table["seen_mean"]
    return table[COLUMNS]


def per_composition(summary: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(kind, composition, table): a ``trained_on`` table per training composition (all its
    validations) and a ``held_out`` table per held-out composition (the training compositions
    validated on it)."""
    tables = []
    for corruption, rows in summary.groupby("corruption", sort=True):
        tables.append(("trained_on", corruption, rows.drop(columns="corruption")))
    held_out = summary[summary["held_out"]]
    for val_corruption, rows in held_out.groupby("val_corruption", sort=True):
        tables.append(("held_out", val_corruption, rows.drop(columns=["val_corruption", "held_out"])))
    return tables
