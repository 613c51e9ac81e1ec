"""The report's prose: each table's and figure's title and description, and the notes the
analysis adds, kept apart from the code that computes them. ``{placeholders}`` are filled in by
the pipeline."""

from __future__ import annotations

# The columns of the compositional tables (analysis/compositions.py).
_COMPOSITION_COLUMNS = ("mean, std, n of the metric; held_out: validated on another composition than trained on; gap: "
                        "mean - seen_mean (the same architecture validated on its training composition)")

TABLES = {
    "metrics": (
        "Metric per task",
        "Trainings are ranked by {metric}; a task without it (a regression: the adding problem) by val_loss, lower is "
        "better."),
    "best_hyperparameters": (
        "Best hyperparameters per architecture and task",
        "The hyperparameters whose mean metric over replicates is best, with mean, std and n (replicates); "
        "configurations: how many were compared."),
    "architecture_effects": (
        "Architecture effects per task",
        "OLS value ~ architecture on the best-hyperparameter trainings, Treatment coding with rnn as the reference: "
        "the intercept row is rnn's mean; the others the difference from it, with standard error and p-value. For "
        "val_loss tasks a negative difference is better."),
    "pairwise": (
        "Pairwise architecture comparisons",
        "t-tests of each pair's difference (a - b) with the model's pooled residual variance; p_bonferroni multiplies "
        "p by the number of pairs in the task (at most 1); better: the significantly better one."),
    "pairwise_proportions": (
        "Share of tasks with a significant difference",
        "Per pair: tasks compared, tasks with p_bonferroni < 0.05 and their share; a_better / b_better: in how many of "
        "them each was the better."),
    "learning_curves": (
        "Learning curves (summary)",
        "Best hyperparameters' trainings: the metric's mean after the first and the last epoch, and the epoch with the "
        "best mean."),
    "learning_curves_by_epoch": (
        "Learning curves per epoch",
        "Mean, std and n of the metric per architecture, task and epoch; loss_mean: training loss; *_adjoint_median: "
        "per-epoch adjoint norms, when recorded."),
    "divergence": (
        "Divergence per architecture and task",
        "Finished trainings, how they ended, and the share that diverged (non-finite loss)."),
    "divergence_by_architecture": ("Divergence per architecture", "All tasks together."),
    "adjoint_norms": (
        "Adjoint norms",
        "Medians of the initial and terminal adjoint norms over the ok trainings, the median of log10(initial / "
        "terminal) (negative: the gradient fades on its way back), and the Spearman correlation of that ratio with "
        "the metric."),
    "rungs": (
        "Adaptive search: trainings per epoch budget",
        "Every finished row, by its epochs (rung): promoted ones continued their parent's checkpoint; finalist "
        "replicates were trained from scratch at the full budget."),
    "epochs_budget": (
        "Adaptive search: epochs trained against the full grid",
        "grid_epochs: every configuration seen at the full budget with every replicate."),
    "status": ("Trainings per status", "Every row of the runs, finished or not."),
    "compositions": (
        "Compositions: seen and held out",
        f"Hyperparameters chosen on the seen validation ({_COMPOSITION_COLUMNS}); chosen_on says where."),
    "trained_on": ("Trained on {composition}", f"As in Compositions: {_COMPOSITION_COLUMNS}."),
    "held_out": ("Validated on held-out {composition}", f"As in Compositions: {_COMPOSITION_COLUMNS}."),
}

FIGURES = {
    "architecture_effects": (
        "Architecture effects",
        "Difference of each architecture's mean from rnn's, per dataset (rows) and variation (columns); error bars ±1 "
        "standard error."),
    "metric_by_architecture": (
        "Validation metric by architecture",
        "Boxes: every ok training of the task (all hyperparameters); dots: the trainings of each architecture's best "
        "hyperparameters."),
    "pairwise_proportions": (
        "Significant pairwise differences",
        "Share of tasks in which two architectures differ (Bonferroni, p < 0.05)."),
    "learning_curves": (
        "Learning curves: {task}",
        "Mean ± std over the best hyperparameters' trainings of each architecture (choose the task with --task)."),
    "adjoint_vs_metric": (
        "Adjoint norms and accuracy",
        "Initial over terminal adjoint norm (log scale: below 1, the gradient signal fades on its way back to the "
        "first step) against the validation metric."),
}

NOTES = {
    "adaptive": "adaptive search (asha): a configuration has a row per rung it reached; the tables use, per chain of "
                "promotions (resume_from), the row with the most epochs, i.e. the highest rung reached",
    "task_without_metric": "{task}: no ok training with a finite {metric} or val_loss yet: left out of the comparisons",
    "nothing_to_compare": "no finished ok trainings with a metric: nothing to compare yet",
    "no_curves": "no per-epoch records (sims/*/history.json) for the best trainings: learning curves skipped",
    "curve_task_without_records": "--task {task}: no per-epoch records; learning curves drawn for {drawn}",
    "no_adjoints": "no adjoint norms (initial_adjoint, terminal_adjoint) recorded: adjoint tables and figures skipped",
}
