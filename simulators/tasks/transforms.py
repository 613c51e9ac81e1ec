"""Task variations: a fixed permutation of the time axis and noise padding.

The permutation and the padded positions depend only on the sequence length, never on the
run, so every training of a study, train and validation alike, sees the same task.
"""

from __future__ import annotations

import numpy as np

from simulators.tasks.base import TaskData

PERMUTATION_SEED = 1234
NOISE_SEED = 4321


def permutation(steps: int) -> np.ndarray:
    return np.random.default_rng(PERMUTATION_SEED).permutation(steps)


def data_positions(steps: int, pad: int, orientation: str) -> np.ndarray:
    """Where the original steps land in the padded sequence of ``steps + pad``."""
    if orientation == "post":
        return np.arange(steps)
    if orientation == "uniform":  # spread evenly, Bresenham-style
        return (np.arange(steps) * (steps + pad)) // steps
    raise ValueError(f"orientation '{orientation}' does not pad; use post or uniform")


def _pad(x: np.ndarray, pad: int, orientation: str, vocabulary: int | None, rng: np.random.Generator) -> np.ndarray:
    samples, steps = x.shape[:2]
    shape = (samples, steps + pad, *x.shape[2:])
    if vocabulary:  # random word indices; 0 stays the padding index
        out = rng.integers(1, vocabulary, size=shape).astype(x.dtype)
    else:
        out = rng.uniform(0.0, 1.0, size=shape).astype(x.dtype)
    out[:, data_positions(steps, pad, orientation)] = x
    return out


def apply_variation(data: TaskData, permute: bool, pad: int, orientation: str) -> TaskData:
    """The task as the point asks for it: permuted first, then padded."""
    if (pad == 0) != (orientation == "none"):
        raise ValueError(f"pad={pad} with orientation='{orientation}': pad must be 0 exactly when orientation is none")
    if data.per_step and (permute or pad):
        raise ValueError("a task labelled at every step (group with labels: running) takes no permute or pad")
    x_train, x_val = data.x_train, data.x_val
    if permute:
        order = permutation(data.steps)
        x_train, x_val = x_train[:, order], x_val[:, order]
    if pad:
        rng = np.random.default_rng(NOISE_SEED)
        x_train = _pad(x_train, pad, orientation, data.vocabulary, rng)
        x_val = _pad(x_val, pad, orientation, data.vocabulary, rng)
    return data.with_inputs(x_train, x_val)
