"""Two interleaving half circles (scikit-learn's ``make_moons``): the smallest offline task, a
binary classification a network learns in seconds; generated, no download.

A sample is a 2-D point (x, y) read as a sequence: ``form: steps`` (default) gives 2 steps of 1
feature (x, then y), so the network must carry x in its state until y arrives; ``form: features``
gives 1 step of 2 features, a feed-forward problem through one recurrent update.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from simulators.tasks.base import TaskData

TRAIN_SEED, VALIDATION_SEED = 1, 2  # every training of a study sees the same points


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    train_samples: int = Field(1000, ge=2, description="Training points.")
    val_samples: int = Field(500, ge=2, description="Validation points.")
    noise: float = Field(0.1, ge=0, description="Standard deviation of the Gaussian noise added to every point.")
    form: Literal["steps", "features"] = Field(
        "steps", description="steps: (x, y) as 2 steps of 1 feature; features: 1 step of 2 features.")


def missing_files(data_dir: Path | None) -> list[str]:
    return []


def _sequences(samples: int, options: Options, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_moons

    points, labels = make_moons(samples, noise=options.noise, random_state=seed)
    shape = (samples, 2, 1) if options.form == "steps" else (samples, 1, 2)
    return points.reshape(shape).astype("float32"), labels.astype("int32")


def load(options: Options, data_dir: Path | None = None) -> TaskData:
    x_train, y_train = _sequences(options.train_samples, options, TRAIN_SEED)
    x_val, y_val = _sequences(options.val_samples, options, VALIDATION_SEED)
    return TaskData(x_train, y_train, x_val, y_val, objective="binary", n_classes=2)
