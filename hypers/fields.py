"""The fields of a training point: one table, and everything else derived from it.

A row gives a field's name, its NumPy dtype in the history array, its default, how a command-line
string is parsed, how a value is checked, and whether a search space may choose it. The history
dtype, the defaults, space validation, the trainer's command-line flags (``python -m
simulators.train``) and analysis' column types all read this table, so a field is added with one
row. The derived values are functions, so they always follow the table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulators.architectures import ARCHITECTURE_NAMES
from simulators.tasks import TASK_NAMES
from simulators.tasks.corruptions import NONE, parse

ORIENTATIONS = ("none", "post", "uniform")
CORRUPTION_CHARS = 64
Check = Callable[[str, Any], Any]


def one_of(allowed: tuple[str, ...]) -> Check:
    def check(name: str, value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"'{name}' got {value!r}; allowed: {', '.join(allowed)}")
        return value

    return check


def whole_number(minimum: int) -> Check:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"'{name}' takes whole numbers, got {value!r}")
        if value < minimum:
            raise ValueError(f"'{name}' must be >= {minimum}, got {value}")
        return value

    return check


def positive_number(name: str, value: Any) -> float:
    try:
        number = float(value)  # YAML reads 1e-3 (no dot) as a string
    except (TypeError, ValueError):
        raise ValueError(f"'{name}' takes numbers, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise ValueError(f"'{name}' must be a finite number > 0, got {value!r}")
    return number


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"'{name}' takes true or false, got {value!r}")
    return value


def text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"'{name}' takes text, got {value!r}")
    return value


def composition(name: str, value: Any) -> str:
    """A composition of image corruptions (``simulators/tasks/corruptions.py``) that fits the history."""
    try:
        parse(value)
    except ValueError as error:
        raise ValueError(f"'{name}': {error}") from None
    if len(value) > CORRUPTION_CHARS:
        raise ValueError(f"'{name}': {value!r} is longer than {CORRUPTION_CHARS} characters; compose fewer corruptions")
    return value


def parse_boolean(raw: str) -> bool | str:
    """A command-line true/false; anything else is left for the check to refuse."""
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    return words.get(raw.strip().lower(), raw)


def parse_whole(raw: str) -> int | str:
    try:
        return int(raw)
    except ValueError:
        return raw  # the check names the field and the value


@dataclass(frozen=True)
class PointField:
    name: str
    dtype: str  # in the history array
    check: Check  # the normalised value, or ValueError naming the field, the value and what is allowed
    default: Any = None  # None: the space must choose it (architecture, dataset)
    parse: Callable[[str], Any] = str  # a command-line string -> a value for ``check``
    choosable: bool = True  # a search space may choose it; else derived per point
    flag: bool = True  # a flag of the standalone trainer (python -m simulators.train)
    # Added after the published study: a point made without it (an older history, a point written
    # by hand) has the default, and at the default it stays out of the identifier, so every earlier
    # study's points keep their identifiers (and seeds).
    neutral: bool = False
    help: str = ""

    def validate(self, value: Any) -> Any:
        return self.check(self.name, value)


FIELDS: tuple[PointField, ...] = (
    PointField("architecture", "U24", one_of(ARCHITECTURE_NAMES), help="the recurrent layer"),
    PointField("dataset", "U24", one_of(TASK_NAMES), help="the task"),
    PointField("permute", "bool", boolean, False, parse_boolean, help="a fixed permutation of the time axis"),
    PointField("pad", "i8", whole_number(0), 0, parse_whole,
               help="noise steps added; 0 exactly when orientation is none"),
    PointField("orientation", "U8", one_of(ORIENTATIONS), "none", help="where the noise goes: none, post or uniform"),
    PointField("corruption", f"U{CORRUPTION_CHARS}", composition, NONE, neutral=True,
               help="image corruptions of the training images, e.g. noise+blur (noise, then blur)"),
    PointField("val_corruption", f"U{CORRUPTION_CHARS}", composition, NONE, neutral=True,
               help="corruptions of the validation images: held out when they differ from the corruption"),
    PointField("hidden_dim", "i8", whole_number(1), 64, parse_whole),
    PointField("learning_rate", "f8", positive_number, 1e-3),
    PointField("epochs", "i8", whole_number(1), 10, parse_whole),
    PointField("batch_size", "i8", whole_number(1), 32, parse_whole),
    # Derived per point: the seed and identifier from the configuration and replicate;
    # resume_from names the training whose checkpoint this one continues (asha), "" for none.
    PointField("seed", "i8", whole_number(0), 0, parse_whole, choosable=False, help="seeds weights and shuffling"),
    PointField("replicate", "i8", whole_number(0), 0, parse_whole, choosable=False, flag=False),
    PointField("identifier", "U36", text, "", choosable=False, flag=False),
    PointField("resume_from", "U36", text, "", choosable=False, flag=False),
)


def point_field(name: str) -> PointField:
    for row in FIELDS:
        if row.name == name:
            return row
    raise ValueError(f"unknown field '{name}'; allowed: {', '.join(choice_fields())}")


def point_dtype() -> list[tuple[str, str]]:
    """The point fields of the history array (and of the generators' output)."""
    return [(row.name, row.dtype) for row in FIELDS]


def point_fields() -> tuple[str, ...]:
    return tuple(row.name for row in FIELDS)


def choice_fields() -> tuple[str, ...]:
    """Fields a search space may choose."""
    return tuple(row.name for row in FIELDS if row.choosable)


def defaults() -> dict[str, Any]:
    """Values of the choosable fields a space leaves out."""
    return {row.name: row.default for row in FIELDS if row.choosable and row.default is not None}


def neutral_values() -> dict[str, Any]:
    """The fields added after the published study, with the value of a point made without them."""
    return {row.name: row.default for row in FIELDS if row.neutral}


def value_of(point: dict[str, Any], name: str) -> Any:
    """``point[name]``; a point made without a neutral field (before it existed) has its neutral value."""
    return point[name] if name in point else neutral_values()[name]


def identity(configuration: dict[str, Any]) -> dict[str, Any]:
    """The configuration's choice fields that make it what it is (neutral fields at their neutral
    value left out)."""
    neutral = neutral_values()
    values = {name: value_of(configuration, name) for name in choice_fields()}
    return {name: value for name, value in values.items() if name not in neutral or value != neutral[name]}


def with_seen_validation(configuration: dict[str, Any], chosen: dict[str, Any]) -> dict[str, Any]:
    """``configuration`` validated on its own corruption unless ``chosen`` names a val_corruption."""
    if "val_corruption" in chosen:
        return configuration
    return {**configuration, "val_corruption": configuration["corruption"]}


def validate_choice_value(name: str, value: Any) -> Any:
    """``value`` normalised for the choosable field ``name``, or ValueError naming the field and the fix."""
    if name not in choice_fields():
        raise ValueError(f"unknown field '{name}'; allowed: {', '.join(choice_fields())}")
    return point_field(name).validate(value)


def point_from_row(row: np.void) -> dict[str, Any]:
    """A history row's point fields as plain Python values (for JSON and the trainer)."""
    return {name: row[name].item() for name in point_fields()}
