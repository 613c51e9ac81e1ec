"""Learning-rate schedules of a training plan."""

from __future__ import annotations

import keras
import pytest

from simulators.engines import Plan


def rate_at(optimizer, step: int) -> float:
    rate = optimizer.learning_rate if not callable(optimizer._learning_rate) else optimizer._learning_rate(step)
    return float(keras.ops.convert_to_numpy(rate))


def test_warmup_then_cosine_schedule():
    plan = Plan(epochs=10, batch_size=10, learning_rate=0.1, seed=0, schedule="warmup_cosine", warmup_epochs=2)
    optimizer = plan.optimizer(samples=100)  # 10 steps per epoch: warm-up 20 steps, 80 of cosine decay
    assert rate_at(optimizer, 0) == pytest.approx(0.0)
    assert rate_at(optimizer, 10) == pytest.approx(0.05, rel=1e-3)
    assert rate_at(optimizer, 20) == pytest.approx(0.1, rel=1e-3)
    assert rate_at(optimizer, 60) == pytest.approx(0.05, rel=1e-3)
    assert rate_at(optimizer, 100) == pytest.approx(0.0, abs=1e-6)
    constant = Plan(epochs=1, batch_size=1, learning_rate=0.3, seed=0).optimizer(5)
    assert float(constant.learning_rate) == pytest.approx(0.3)
