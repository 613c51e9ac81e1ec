"""The table shown when an ensemble ends: the best result per (architecture, dataset)."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

from simulators.records import Status


def best_results_table(H: np.ndarray) -> Table:
    table = Table(title="Best per architecture and dataset")
    for column in ("architecture", "dataset", "trainings", "ok", "best val_accuracy", "best val_loss"):
        table.add_column(column, justify="left" if column in ("architecture", "dataset") else "right")
    finished = H[H["sim_ended"]]
    for architecture, dataset in sorted({(r["architecture"], r["dataset"]) for r in finished}):
        rows = finished[(finished["architecture"] == architecture) & (finished["dataset"] == dataset)]
        ok = rows[rows["status"] == Status.OK]
        table.add_row(
            architecture,
            dataset,
            str(len(rows)),
            str(len(ok)),
            _best(ok["best_val_accuracy"], np.nanmax),
            _best(ok["val_loss"], np.nanmin),
        )
    return table


def _best(values: np.ndarray, pick) -> str:
    finite = values[np.isfinite(values)]
    return f"{pick(finite):.4f}" if len(finite) else "-"


def print_summary(H: np.ndarray, history_path) -> None:
    console = Console()
    ended = H["sim_ended"]
    counts = {status: int(np.count_nonzero(ended & (H["status"] == status))) for status in Status}
    console.print(best_results_table(H))
    console.print(
        f"{int(ended.sum())} of {len(H)} trainings finished ("
        + ", ".join(f"{count} {status}" for status, count in counts.items())
        + f"); history: {history_path}"
    )
