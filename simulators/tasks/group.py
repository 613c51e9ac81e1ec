"""State tracking on a finite group: read a sequence of group elements and name, at every step,
the product so far.

The word problem of group-operation studies (Liu et al., ICLR 2023; Merrill et al., ICML 2024):
for an abelian group (cyclic) a running sum suffices, for a non-solvable one (S5) no fixed-depth
circuit does, so it separates architectures by what their state can track. Elements are
permutations; inputs are one-hot element indices, and the label of step t is the index of
g_1 g_2 ... g_t, read from the state at step t (``labels: running``, scored over every step);
``labels: final`` keeps only the product of the whole word. Generated, no download.
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulators.tasks.base import TaskData


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    group: Literal["cyclic", "dihedral", "symmetric"] = Field("symmetric", description="C_n, D_n or S_n.")
    degree: int = Field(5, ge=2, le=64, description="n: C_n has n elements, D_n 2n, S_n n! (n <= 6).")
    length: int = Field(32, ge=1, description="Elements per sequence.")
    labels: Literal["running", "final"] = Field(
        "running", description="running: the product so far at every step; final: only the whole word's."
    )
    train_samples: int = Field(10_000, ge=1)
    val_samples: int = Field(1_000, ge=1)

    @model_validator(mode="after")
    def _small_symmetric_group(self) -> Options:
        if self.group == "symmetric" and self.degree > 6:
            raise ValueError(f"degree {self.degree}: the symmetric group takes degree <= 6 (S6 has 720 elements)")
        return self


def missing_files(data_dir: Path | None) -> list[str]:
    return []


def elements(group: str, degree: int) -> list[tuple[int, ...]]:
    """The group's elements as permutations of range(degree), identity first."""
    rotations = [tuple((i + shift) % degree for i in range(degree)) for shift in range(degree)]
    if group == "cyclic":
        return rotations
    if group == "dihedral":
        return rotations + [tuple((shift - i) % degree for i in range(degree)) for shift in range(degree)]
    return list(itertools.permutations(range(degree)))


@functools.lru_cache(maxsize=8)
def multiplication_table(group: str, degree: int) -> np.ndarray:
    """table[a, b] = index of a*b, where (a*b)(i) = a(b(i))."""
    members = elements(group, degree)
    index = {member: position for position, member in enumerate(members)}
    return np.array([[index[tuple(a[b[i]] for i in range(degree))] for b in members] for a in members])


def running_products(words: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(samples, length) element indices -> the index of g_1 ... g_t at every step t."""
    products = np.empty_like(words)
    product = np.zeros(len(words), dtype=words.dtype)  # the identity
    for step in range(words.shape[1]):
        product = products[:, step] = table[product, words[:, step]]
    return products


def generate(samples: int, options: Options, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    table = multiplication_table(options.group, options.degree)
    words = rng.integers(0, len(table), size=(samples, options.length))
    products = running_products(words, table).astype("int32")
    return np.eye(len(table), dtype="float32")[words], products if options.labels == "running" else products[:, -1]


def load(options: Options, data_dir: Path | None = None) -> TaskData:
    x_train, y_train = generate(options.train_samples, options, np.random.default_rng(1))
    x_val, y_val = generate(options.val_samples, options, np.random.default_rng(2))
    order = len(multiplication_table(options.group, options.degree))
    return TaskData(x_train, y_train, x_val, y_val, objective="classification", n_classes=order,
                    per_step=options.labels == "running")
