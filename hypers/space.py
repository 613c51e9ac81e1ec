"""Search spaces: a product of named choices, minus excluded combinations, times replicates.

A space is never materialised: ``configurations()`` walks the product lazily, so the
published 33,600-training grid and far larger ones cost constant memory to stream.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hypers.fields import CHOICE_FIELDS, DEFAULTS, validate_choice_value, with_seen_validation

Scalar = bool | int | float | str


class SearchSpace(BaseModel):
    """Named choices (each a list of values), exclusion rules and a replicate count."""

    model_config = ConfigDict(extra="forbid")

    choices: dict[str, list[Scalar]] = Field(
        description="Point field -> the values it takes; fields left out take their default."
    )
    exclude: list[dict[str, Scalar | list[Scalar]]] = Field(
        default_factory=list,
        description="A configuration is dropped when it matches every field of any rule "
        "(a rule value may be a list: any of them matches).",
    )
    replicates: int = Field(default=1, ge=1, description="Trainings per configuration, each with its own seed.")

    @field_validator("choices")
    @classmethod
    def _check_choices(cls, choices: dict[str, list[Scalar]]) -> dict[str, list[Scalar]]:
        for name in ("architecture", "dataset"):
            if name not in choices:
                raise ValueError(f"'{name}' is required: list the values to train, e.g. {name}: [...]")
        for name, values in choices.items():
            if name not in CHOICE_FIELDS:
                raise ValueError(f"unknown field '{name}'; allowed: {', '.join(CHOICE_FIELDS)}")
            if not values:
                raise ValueError(f"'{name}' has no values; give at least one")
            checked = [validate_choice_value(name, value) for value in values]
            if len(set(checked)) != len(checked):
                raise ValueError(f"'{name}' lists a value twice: {values}")
            choices[name] = checked
        return choices

    @model_validator(mode="after")
    def _check_exclusions(self) -> SearchSpace:
        for number, rule in enumerate(self.exclude):
            for name, value in rule.items():
                if name not in self.choices:
                    raise ValueError(
                        f"exclude[{number}] names '{name}', which is not among the choices "
                        f"({', '.join(self.choices)})"
                    )
                items = [validate_choice_value(name, item) for item in (value if isinstance(value, list) else [value])]
                for item in items:
                    if item not in self.choices[name]:
                        raise ValueError(f"exclude[{number}].{name}: {item!r} is not one of {self.choices[name]}")
                rule[name] = items
        if self.count_configurations() == 0:
            raise ValueError("the exclusion rules exclude every configuration")
        return self

    def is_excluded(self, configuration: dict[str, Any]) -> bool:
        return any(all(configuration[name] in values for name, values in rule.items()) for rule in self.exclude)

    @staticmethod
    def complete(configuration: dict[str, Any], defaults: dict[str, Any] | None = None) -> dict[str, Any]:
        """The configuration with every point field: chosen values over ``defaults`` over DEFAULTS; a
        val_corruption not given is the configuration's corruption (validated on what it trains on)."""
        given = {**(defaults or {}), **configuration}
        return with_seen_validation({**DEFAULTS, **given}, given)

    def configurations(self, defaults: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every allowed configuration, completed with ``defaults`` for fields not chosen, in a fixed order."""
        names = list(self.choices)
        for values in itertools.product(*(self.choices[name] for name in names)):
            configuration = dict(zip(names, values))
            if not self.is_excluded(configuration):
                yield self.complete(configuration, defaults)

    def count_configurations(self) -> int:
        """How many configurations survive the exclusions (without replicates)."""
        if not self.exclude:
            return math.prod(len(values) for values in self.choices.values())
        return sum(1 for _ in self.configurations())

    def count_points(self, replicates: int | None = None) -> int:
        return self.count_configurations() * (replicates or self.replicates)
