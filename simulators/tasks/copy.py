"""The copy task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016): read a sequence of
symbols, wait through a delay of blanks, then reproduce the whole sequence from the final state.
Generated, no download. Scored by per-symbol accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from simulators.tasks.base import TaskData


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbols: int = Field(8, ge=2, description="Alphabet size; one more input channel marks 'recall now'.")
    length: int = Field(10, ge=1, description="Symbols to memorise.")
    delay: int = Field(100, ge=0, description="Blank steps between the sequence and the recall marker.")
    train_samples: int = Field(10_000, ge=1)
    val_samples: int = Field(1_000, ge=1)


def missing_files(data_dir: Path | None) -> list[str]:
    return []


def generate(samples: int, options: Options, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One-hot symbols in channels 0..symbols-1, the recall marker in the last channel."""
    targets = rng.integers(0, options.symbols, size=(samples, options.length))
    steps = options.length + options.delay + 1
    x = np.zeros((samples, steps, options.symbols + 1), dtype="float32")
    x[np.arange(samples)[:, None], np.arange(options.length), targets] = 1.0
    x[:, -1, options.symbols] = 1.0
    return x, targets.astype("int32")


def load(options: Options, data_dir: Path | None = None) -> TaskData:
    x_train, y_train = generate(options.train_samples, options, np.random.default_rng(1))
    x_val, y_val = generate(options.val_samples, options, np.random.default_rng(2))
    return TaskData(
        x_train, y_train, x_val, y_val, objective="classification", n_classes=options.symbols,
        target_steps=options.length,
    )
