"""The fields of a training point: their types, defaults and allowed values.

One table serves the search space (validation), the generators (the history dtype) and the
trainer (reading a point back), so a field is added in one place.
"""

from __future__ import annotations

import math
from typing import Any

from simulators.architectures import ARCHITECTURE_NAMES
from simulators.tasks import TASK_NAMES
from simulators.tasks.corruptions import NONE, parse

ORIENTATIONS = ("none", "post", "uniform")
CORRUPTION_CHARS = 64

# name -> NumPy dtype in the history array
POINT_DTYPE = [
    ("architecture", "U24"),
    ("dataset", "U24"),
    ("permute", bool),
    ("pad", "i8"),
    ("orientation", "U8"),
    ("corruption", f"U{CORRUPTION_CHARS}"),  # the composition of image corruptions it trains on (corruptions.py)
    ("val_corruption", f"U{CORRUPTION_CHARS}"),  # the composition it is validated on: held out when it differs
    ("hidden_dim", "i8"),
    ("learning_rate", "f8"),
    ("epochs", "i8"),
    ("batch_size", "i8"),
    ("seed", "i8"),
    ("replicate", "i8"),
    ("identifier", "U36"),
    ("resume_from", "U36"),
]
POINT_FIELDS = tuple(name for name, _ in POINT_DTYPE)
# Derived per point: seed and identifier from the configuration and replicate; resume_from names
# the training whose checkpoint this one continues (adaptive search promotions), "" for none.
DERIVED_FIELDS = ("seed", "replicate", "identifier", "resume_from")
# Fields a search space may vary.
CHOICE_FIELDS = tuple(name for name in POINT_FIELDS if name not in DERIVED_FIELDS)

DEFAULTS: dict[str, Any] = {
    "permute": False,
    "pad": 0,
    "orientation": "none",
    "corruption": NONE,
    "val_corruption": NONE,  # left out of a configuration: the training's own corruption (see complete)
    "hidden_dim": 64,
    "learning_rate": 1e-3,
    "epochs": 10,
    "batch_size": 32,
}


# Fields added after the published study: they join a point's identity only where they change its
# task, so that the identifiers (and seeds) of every earlier study's points stay as they were.
NEUTRAL_VALUES = {"corruption": NONE, "val_corruption": NONE}


def with_seen_validation(configuration: dict[str, Any], chosen: dict[str, Any]) -> dict[str, Any]:
    """``configuration`` validated on its own corruption unless ``chosen`` names a val_corruption."""
    if "val_corruption" in chosen:
        return configuration
    return {**configuration, "val_corruption": configuration["corruption"]}


def value_of(point: dict[str, Any], name: str) -> Any:
    """``point[name]``; a point made without a field of NEUTRAL_VALUES (before it existed) has its neutral value."""
    return point.get(name, NEUTRAL_VALUES[name]) if name in NEUTRAL_VALUES else point[name]


def identity(configuration: dict[str, Any]) -> dict[str, Any]:
    """The configuration's choice fields that make it what it is (NEUTRAL_VALUES left out)."""
    values = {name: value_of(configuration, name) for name in CHOICE_FIELDS}
    return {name: value for name, value in values.items()
            if name not in NEUTRAL_VALUES or value != NEUTRAL_VALUES[name]}


def _positive_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"'{name}' takes whole numbers, got {value!r}")
    if value < minimum:
        raise ValueError(f"'{name}' must be >= {minimum}, got {value}")
    return value


def _learning_rate(value: Any) -> float:
    try:
        rate = float(value)  # YAML reads 1e-3 (no dot) as a string
    except (TypeError, ValueError):
        raise ValueError(f"'learning_rate' takes numbers, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"'learning_rate' must be a finite number > 0, got {value!r}")
    return rate


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"'{name}' got {value!r}; allowed: {', '.join(allowed)}")
    return value


def _corruption(name: str, value: Any) -> str:
    try:
        parse(value)
    except ValueError as error:
        raise ValueError(f"'{name}': {error}") from None
    if len(value) > CORRUPTION_CHARS:
        raise ValueError(f"'{name}': {value!r} is longer than {CORRUPTION_CHARS} characters; compose fewer corruptions")
    return value


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"'{name}' takes true or false, got {value!r}")
    return value


def validate_choice_value(name: str, value: Any) -> Any:
    """Return ``value`` normalised for field ``name``, or raise ValueError naming the field and the fix."""
    if name == "architecture":
        return _one_of(name, value, ARCHITECTURE_NAMES)
    if name == "dataset":
        return _one_of(name, value, TASK_NAMES)
    if name == "orientation":
        return _one_of(name, value, ORIENTATIONS)
    if name == "permute":
        return _boolean(name, value)
    if name in ("corruption", "val_corruption"):
        return _corruption(name, value)
    if name == "learning_rate":
        return _learning_rate(value)
    if name == "pad":
        return _positive_int(name, value, 0)
    if name in ("hidden_dim", "epochs", "batch_size"):
        return _positive_int(name, value, 1)
    raise ValueError(f"unknown field '{name}'; allowed: {', '.join(CHOICE_FIELDS)}")
