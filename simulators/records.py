"""What a training reports: how it ended, the result fields of the history array, its per-epoch
history, and the JSON files they are written to."""

from __future__ import annotations

import json
import math
import os
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np


class Status(str, Enum):
    """How a training ended; the values are what the history's ``status`` field holds."""

    OK = "ok"
    DIVERGED = "diverged"  # a non-finite loss: a result, not a failure
    FAILED = "failed"
    TIMEOUT = "timeout"

    def __str__(self) -> str:
        return self.value


# A training that ran to its end (not retried, not trained again on resume).
FINISHED = frozenset({Status.OK, Status.DIVERGED})

# An epoch record's wall times (engines/jax_step.py says what each covers): the fields that differ
# between two runs of the same training.
EPOCH_TIMES = ("seconds", "fit_seconds")

# ||dL/dh_1|| and ||dL/dh_T|| of the last epoch, on train and validation probe batches
ADJOINT_FIELDS = ("initial_adjoint", "terminal_adjoint", "val_initial_adjoint", "val_terminal_adjoint")

RESULT_DTYPE = [
    ("status", "U8"),
    ("loss", "f8"),
    ("accuracy", "f8"),
    ("val_loss", "f8"),
    ("val_accuracy", "f8"),
    ("best_val_accuracy", "f8"),
    *((name, "f8") for name in ADJOINT_FIELDS),
    ("epochs_completed", "i8"),
    ("n_params", "i8"),
    ("train_seconds", "f8"),
    ("sim_dir", "U64"),
    ("error", "U256"),
]
RESULT_FIELDS = tuple(name for name, _ in RESULT_DTYPE)
# What a result takes from the last epoch of the history.
LAST_EPOCH_FIELDS = ("loss", "accuracy", "val_loss", "val_accuracy", *ADJOINT_FIELDS)


def empty_result(**values: Any) -> dict[str, Any]:
    """A result with every metric unknown (NaN) and counts zero, updated with ``values``."""
    result: dict[str, Any] = {
        name: (np.nan if dtype == "f8" else 0 if dtype == "i8" else "") for name, dtype in RESULT_DTYPE
    }
    result.update(values)
    return result


def write_json(path: Path, payload: Any) -> None:
    """Write then rename, so a reader or a kill never sees half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(payload, indent=1, default=_json_default, allow_nan=True))
    os.replace(temporary, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


class EpochHistory:
    """Per-epoch metrics, rewritten to the sim dir's history after every epoch so a killed
    training still leaves its learning curve."""

    def __init__(self, path: Path, epochs: list[dict[str, Any]] | None = None):
        self.path = path
        self.epochs: list[dict[str, Any]] = epochs or []

    @classmethod
    def load(cls, path: Path) -> EpochHistory:
        """The epochs a (possibly killed) training wrote so far."""
        return cls(path, read_json(path) if path.exists() else [])

    def record(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Store the epoch; False (stop training) when the loss is no longer finite."""
        self.epochs.append({"epoch": epoch, **metrics})
        write_json(self.path, self.epochs)
        return math.isfinite(metrics.get("loss", math.nan))

    def truncate(self, epochs: int) -> None:
        """Forget epochs after a restored checkpoint: they will be trained again."""
        self.epochs = self.epochs[:epochs]
        write_json(self.path, self.epochs)

    @property
    def diverged(self) -> bool:
        return any(not math.isfinite(epoch.get("loss", math.nan)) for epoch in self.epochs)

    def summary(self) -> dict[str, Any]:
        if not self.epochs:
            return {}
        last = self.epochs[-1]
        val_accuracies = [e["val_accuracy"] for e in self.epochs if math.isfinite(e.get("val_accuracy", math.nan))]
        summary = {name: last[name] for name in LAST_EPOCH_FIELDS if name in last}
        summary["best_val_accuracy"] = max(val_accuracies, default=math.nan)
        summary["epochs_completed"] = len(self.epochs)
        return summary
