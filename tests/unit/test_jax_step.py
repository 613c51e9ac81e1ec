"""The JAX engine's choices that need no JAX: how much validation runs at once."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.architectures.compute import Compute
from simulators.engines.jax_step import VALIDATION_BATCHES, _validation_chunk
from simulators.models import build_model
from simulators.tasks.base import TaskData


@pytest.mark.parametrize(("compute", "batches"), [
    (Compute(), VALIDATION_BATCHES),  # the scan stores every step's intermediates: two batches fit
    (Compute(remat=True), 1),  # a training step keeps only each step's state: no more than it
    (Compute(kernel="fused"), 1),  # the fused kernel's memory was not measured
])
def test_validation_runs_two_batches_at_once_only_where_a_training_step_needs_more(compute, batches):
    x = np.zeros((4, 5, 2), dtype="float32")
    data = TaskData(x, np.zeros(4, dtype="int32"), x, np.zeros(4, dtype="int32"), objective="classification",
                    n_classes=3)
    model = build_model("rnn", 8, seed=1, data=data, compute=compute)
    assert _validation_chunk(model, batch_size=32) == 32 * batches
