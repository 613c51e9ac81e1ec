"""Architecture registry: name -> the class of its recurrent layer, and its options model.

The classes live in modules that import Keras; the registry names them as strings so that spec
validation never imports a backend.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable

from simulators.architectures.options import OPTIONS

ARCHITECTURES = {
    "rnn": "simulators.architectures.classic:SimpleRNNScan",
    "lstm": "simulators.architectures.classic:LSTMScan",
    "gru": "simulators.architectures.classic:GRUScan",
    "antisymmetric": "simulators.architectures.dynamical:AntisymmetricRNN",
    "lipschitz": "simulators.architectures.dynamical:LipschitzRNN",
    "exponential": "simulators.architectures.dynamical:ExponentialRNN",
    "unicornn": "simulators.architectures.dynamical:Unicornn",
}
ARCHITECTURE_NAMES = tuple(ARCHITECTURES)


def recurrent_layer_factory(name: str) -> Callable:
    """``factory(hidden_dim, seed, options, return_sequences=False, compute=Compute()) -> keras
    layer`` named "recurrent", mapping (batch, steps, features) to what the read-out reads of the
    last step (batch, width), or of every step (batch, steps, width) with ``return_sequences``."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture '{name}'; allowed: {', '.join(ARCHITECTURE_NAMES)}")
    module, attribute = ARCHITECTURES[name].split(":")
    return functools.partial(getattr(importlib.import_module(module), attribute), name="recurrent")


def architecture_options(name: str, given: dict | None = None):
    """The validated options of architecture ``name`` (the study's setup filled in)."""
    return OPTIONS[name].model_validate(given or {})
