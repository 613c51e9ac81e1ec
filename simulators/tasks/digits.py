"""scikit-learn's bundled handwritten digits, read pixel by pixel: 64 steps of 1 feature.

It ships with scikit-learn, so it is the task that works everywhere with no download.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from simulators.tasks.base import TaskData, split

image_shape = (8, 8, 1)  # rows, columns, channels: the sequences are these images row by row


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    train_samples: int | None = Field(None, ge=1, description="Use the first n training digits (all: None).")


def missing_files(data_dir: Path | None) -> list[str]:
    return []


def load(options: Options, data_dir: Path | None = None) -> TaskData:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images.reshape(len(digits.images), 64, 1) / 16.0).astype("float32")
    y = digits.target.astype("int32")
    x_train, y_train, x_val, y_val = split(x, y, options.validation_fraction, seed=0)
    n = options.train_samples
    return TaskData(x_train[:n], y_train[:n], x_val, y_val, objective="classification", n_classes=10)
