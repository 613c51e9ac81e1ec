"""Epoch checkpoints of one training: weights, optimizer state and the epoch reached.

Stored as one .npz of plain arrays (backend-agnostic), written then renamed, so a training
killed at any moment resumes from its last complete checkpoint instead of from scratch.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np


def save_checkpoint(path: Path, model: keras.Model, epoch: int) -> None:
    arrays = {f"weight_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    arrays |= {f"optimizer_{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model.optimizer.variables)}
    temporary = path.with_name(path.name + ".tmp.npz")
    np.savez(temporary, epoch=epoch, **arrays)
    os.replace(temporary, path)


def restore_checkpoint(path: Path, model: keras.Model) -> int:
    """Load the checkpoint at ``path`` into the compiled ``model``; the epoch it reached (0 if none)."""
    if not path.exists():
        return 0
    with np.load(path) as stored:
        model.set_weights([stored[f"weight_{i}"] for i in range(len(model.weights))])
        model.optimizer.build(model.trainable_variables)
        for i, variable in enumerate(model.optimizer.variables):
            variable.assign(stored[f"optimizer_{i}"])
        return int(stored["epoch"])
