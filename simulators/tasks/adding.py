"""The adding problem (Hochreiter & Schmidhuber 1997): sum the two marked values of a long
noise sequence. A regression task scored by mean squared error; generated, no download."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from simulators.tasks.base import TaskData


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    length: int = Field(750, ge=2, description="Time steps T")
    train_samples: int = Field(10_000, ge=1)
    val_samples: int = Field(1_000, ge=1)


def missing_files(data_dir: Path | None) -> list[str]:
    return []


def generate(samples: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Values in channel 0, markers in channel 1: one marker in each half of the sequence."""
    values = rng.uniform(0.0, 1.0, size=(samples, length)).astype("float32")
    markers = np.zeros((samples, length), dtype="float32")
    half = length // 2
    rows = np.arange(samples)
    first = rng.integers(0, half, size=samples)
    second = rng.integers(half, length, size=samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = (values[rows, first] + values[rows, second]).astype("float32")
    return np.stack([values, markers], axis=-1), target


def load(options: Options, data_dir: Path | None = None) -> TaskData:
    # Fixed seeds: every training of a study sees the same data.
    x_train, y_train = generate(options.train_samples, options.length, np.random.default_rng(1))
    x_val, y_val = generate(options.val_samples, options.length, np.random.default_rng(2))
    return TaskData(x_train, y_train, x_val, y_val, objective="regression")
