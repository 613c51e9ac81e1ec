"""What a training reports: result fields of the history array and the sim-dir JSON files."""

from __future__ import annotations

import json
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
