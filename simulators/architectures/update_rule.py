"""How a layer asks for one of its variables to train otherwise than by Adam at the learning rate
(expRNN's skew parameter in the study's code); the engines' optimizer carries it out."""

from __future__ import annotations

from typing import Literal, NamedTuple


class UpdateRule(NamedTuple):
    """``sgd``: a plain gradient step at ``learning_rate_scale`` times the learning rate; ``adam``:
    Adam at that rate."""

    method: Literal["sgd", "adam"]
    learning_rate_scale: float
