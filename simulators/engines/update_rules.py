"""Adam, with named variables trained by a rule of their own.

The study's expRNN trains its skew-symmetric parameter A (B = expm(A)) by a plain gradient step
at a tenth of the learning rate, while Adam trains every other weight. Keras has one optimizer
per model, so the exception lives inside it: ``update_step`` runs per variable on every backend
and inside ``stateless_apply`` (the jax engine, vectorised groups), so one optimizer class
serves every engine, and its state (Adam's moments) checkpoints as before.
"""

from __future__ import annotations

import keras
from keras import ops

from simulators.architectures.update_rule import UpdateRule


class AdamWithRules(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` but for the variables in ``rules`` (keyed by ``variable.path``):
    ``sgd`` steps by ``-scale * learning_rate * gradient``; ``adam`` is Adam at ``scale *
    learning_rate``. Schedules and clipping apply to all variables alike."""

    def __init__(self, *args, rules: dict[str, UpdateRule] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.rules = dict(rules or {})
        self._rule_at: dict[int, UpdateRule] = {}

    def build(self, variables):
        super().build(variables)
        paths = {variable.path for variable in variables}
        unknown = sorted(set(self.rules) - paths)
        if unknown:
            raise ValueError(f"rules name variables the model does not train: {unknown}; trained: {sorted(paths)}")
        self._rule_at = {self._get_variable_index(v): self.rules[v.path] for v in variables if v.path in self.rules}

    def update_step(self, gradient, variable, learning_rate):
        rule = self._rule_at.get(self._get_variable_index(variable))
        if rule is None:
            return super().update_step(gradient, variable, learning_rate)
        rate = ops.cast(learning_rate, variable.dtype) * rule.learning_rate_scale
        if rule.method == "adam":
            return super().update_step(gradient, variable, rate)
        self.assign_sub(variable, ops.multiply(ops.cast(gradient, variable.dtype), rate))
        return None
