"""Architecture registry: name -> the factory of its recurrent layer, and its options model.

Factories live in modules that import Keras; the registry names them as strings so that spec
validation never imports a backend.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from simulators.architectures.options import OPTIONS

ARCHITECTURES = {
    "rnn": "simulators.architectures.classic:simple_rnn",
    "lstm": "simulators.architectures.classic:lstm",
    "gru": "simulators.architectures.classic:gru",
    "antisymmetric": "simulators.architectures.dynamical:antisymmetric",
    "lipschitz": "simulators.architectures.dynamical:lipschitz",
    "exponential": "simulators.architectures.dynamical:exponential",
    "unicornn": "simulators.architectures.dynamical:unicornn",
}
ARCHITECTURE_NAMES = tuple(ARCHITECTURES)


def recurrent_layer_factory(name: str) -> Callable:
    """``factory(hidden_dim, seed, options, return_sequences=False, compute=Compute()) -> keras
    layer`` mapping (batch, steps, features) to what the read-out reads of the last step (batch,
    width), or of every step (batch, steps, width) with ``return_sequences``."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture '{name}'; allowed: {', '.join(ARCHITECTURE_NAMES)}")
    module, attribute = ARCHITECTURES[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def architecture_options(name: str, given: dict | None = None):
    """The validated options of architecture ``name`` (the study's setup filled in)."""
    return OPTIONS[name].model_validate(given or {})
