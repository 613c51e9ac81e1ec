"""Architecture effects per task: a linear model on the best-hyperparameter trainings.

For every task, ``value ~ C(architecture, Treatment(reference="rnn"))`` is fitted by ordinary
least squares (statsmodels): the intercept is the reference architecture's mean, every other
coefficient the difference of an architecture's mean from it, with its standard error and
p-value. Pairwise comparisons are t-tests of the contrasts of the same model (the pooled
residual standard deviation, as R's ``pairwise.t.test``), Bonferroni-adjusted over the pairs
of a task.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from statsmodels.stats.multitest import multipletests

from analysis.metrics import Metric

REFERENCE = "rnn"
ALPHA = 0.05
EFFECT_COLUMNS = ["task", "architecture", "term", "estimate", "std_error", "p_value", "n", "metric", "reference",
                  "df_resid"]
PAIR_COLUMNS = ["task", "metric", "architecture_a", "architecture_b", "mean_a", "mean_b", "difference", "std_error",
                "t", "p_value", "p_bonferroni", "significant", "better", "n_a", "n_b"]


def reference_level(architectures, preferred: str = REFERENCE) -> str:
    """``rnn`` when present, else the first architecture alphabetically."""
    names = sorted(set(architectures))
    return preferred if preferred in names else names[0]


def fit_task(group: pd.DataFrame, reference: str):
    """The OLS fit of one task's values on architecture (Treatment coding), or None when there is
    only one architecture."""
    if group["architecture"].nunique() < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no residual degrees of freedom: NaN errors, reported as such
        return smf.ols(f"value ~ C(architecture, Treatment(reference={reference!r}))", data=group).fit()


def _term(reference: str, architecture: str) -> str:
    return f"C(architecture, Treatment(reference={reference!r}))[T.{architecture}]"


def architecture_effects(runs: pd.DataFrame, metrics: dict[str, Metric],
                         notes: list[str] | None = None) -> pd.DataFrame:
    """Per task and architecture: the coefficient (the reference row: the intercept, its mean)."""
    records = []
    for task, group in runs.groupby("task", sort=True):
        reference = reference_level(group["architecture"])
        model = fit_task(group, reference)
        if model is None:
            if notes is not None:
                notes.append(f"{task}: only {group['architecture'].iloc[0]} has results; no architecture effects")
            continue
        counts = group["architecture"].value_counts()
        if notes is not None and reference != REFERENCE:
            notes.append(f"{task}: no {REFERENCE} results; {reference} is the reference level")
        if notes is not None and model.df_resid < 1:
            notes.append(f"{task}: one training per architecture: no standard errors (add replicates)")
        for architecture in sorted(counts.index, key=lambda name: (name != reference, name)):
            term = "Intercept" if architecture == reference else _term(reference, architecture)
            records.append({
                "task": task, "architecture": architecture,
                "term": "intercept" if architecture == reference else f"{architecture} - {reference}",
                "estimate": model.params[term], "std_error": model.bse[term], "p_value": model.pvalues[term],
                "n": int(counts[architecture]), "metric": metrics[task].name, "reference": reference,
                "df_resid": model.df_resid,
            })
    return pd.DataFrame(records, columns=EFFECT_COLUMNS)


def pairwise_comparisons(runs: pd.DataFrame, metrics: dict[str, Metric]) -> pd.DataFrame:
    """Every pair of architectures per task: difference of means (a - b), its t-test and the
    Bonferroni-adjusted p-value (times the number of pairs of the task, at most 1)."""
    records = []
    for task, group in runs.groupby("task", sort=True):
        reference = reference_level(group["architecture"])
        model = fit_task(group, reference)
        if model is None:
            continue
        metric = metrics[task]
        names = list(model.params.index)
        means = group.groupby("architecture")["value"].mean()
        counts = group["architecture"].value_counts()
        task_records = []
        for a, b in itertools.combinations(sorted(means.index), 2):
            contrast = np.zeros(len(names))
            if a != reference:
                contrast[names.index(_term(reference, a))] += 1
            if b != reference:
                contrast[names.index(_term(reference, b))] -= 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                test = model.t_test(contrast)
            difference = float(np.squeeze(test.effect))
            task_records.append({
                "task": task, "metric": metric.name, "architecture_a": a, "architecture_b": b,
                "mean_a": means[a], "mean_b": means[b], "difference": difference,
                "std_error": float(np.squeeze(test.sd)), "t": float(np.squeeze(test.tvalue)),
                "p_value": float(np.squeeze(test.pvalue)), "n_a": int(counts[a]), "n_b": int(counts[b]),
            })
        p_values = np.array([record["p_value"] for record in task_records])
        adjusted = np.full(len(p_values), np.nan)
        finite = np.isfinite(p_values)
        if finite.any():
            adjusted[finite] = multipletests(p_values[finite], alpha=ALPHA, method="bonferroni")[1]
        for record, p in zip(task_records, adjusted):
            record["p_bonferroni"] = p
            record["significant"] = bool(np.isfinite(p) and p < ALPHA)
            a_better = metric.better(record["mean_a"], record["mean_b"])
            better = record["architecture_a"] if a_better else record["architecture_b"]
            record["better"] = better if record["significant"] else ""
        records.extend(task_records)
    return pd.DataFrame(records, columns=PAIR_COLUMNS)


def pairwise_proportions(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per pair of architectures: in how many tasks (and which share) they differ significantly
    after Bonferroni, and how often each one was the better."""
    records = []
    for (a, b), group in pairs.groupby(["architecture_a", "architecture_b"], sort=True):
        tasks = len(group)
        significant = int(group["significant"].sum())
        records.append({"architecture_a": a, "architecture_b": b, "tasks": tasks, "significant": significant,
                        "proportion": significant / tasks if tasks else np.nan,
                        "a_better": int((group["better"] == a).sum()), "b_better": int((group["better"] == b).sum())})
    return pd.DataFrame(records, columns=["architecture_a", "architecture_b", "tasks", "significant", "proportion",
                                          "a_better", "b_better"])


def proportion_matrix(proportions: pd.DataFrame) -> pd.DataFrame:
    """The proportions as a symmetric architecture x architecture matrix (NaN on the diagonal)."""
    names = sorted(set(proportions["architecture_a"]) | set(proportions["architecture_b"]),
                   key=lambda name: (name != REFERENCE, name))
    matrix = pd.DataFrame(np.nan, index=names, columns=names)
    for row in proportions.itertuples(index=False):
        matrix.loc[row.architecture_a, row.architecture_b] = row.proportion
        matrix.loc[row.architecture_b, row.architecture_a] = row.proportion
    return matrix
