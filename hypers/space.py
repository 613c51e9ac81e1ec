"""Search spaces: a product of named choices, minus excluded and impossible combinations
(``hypers/rules.py``), times replicates.

A space is never materialised: ``configurations()`` walks the product lazily, so the
published 33,600-training grid and far larger ones cost constant memory to stream.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hypers.fields import defaults as field_defaults
from hypers.fields import validate_choice_value, with_seen_validation
from hypers.rules import IMPOSSIBLE, impossible_because

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
            dropped = "; ".join(f"{count} {why}" for why, count in self.dropped().items())
            raise ValueError(f"exclusions and impossible combinations drop every configuration ({dropped})")
        return self

    def is_excluded(self, configuration: dict[str, Any]) -> bool:
        """Whether a rule of ``exclude`` matches the (chosen fields of the) configuration."""
        return any(all(configuration[name] in values for name, values in rule.items()) for rule in self.exclude)

    def dropped_because(self, configuration: dict[str, Any]) -> str | None:
        """Why a complete configuration is not trained, or None: excluded, or impossible."""
        return "excluded by space.exclude" if self.is_excluded(configuration) else impossible_because(configuration)

    @staticmethod
    def complete(configuration: dict[str, Any], defaults: dict[str, Any] | None = None) -> dict[str, Any]:
        """The configuration with every point field: chosen values over ``defaults`` over the table's; a
        val_corruption not given is the configuration's corruption (validated on what it trains on)."""
        given = {**(defaults or {}), **configuration}
        return with_seen_validation({**field_defaults(), **given}, given)

    def _product(self, defaults: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
        names = list(self.choices)
        for values in itertools.product(*(self.choices[name] for name in names)):
            yield self.complete(dict(zip(names, values)), defaults)

    def configurations(self, defaults: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every configuration trained, completed with ``defaults`` for fields not chosen, in a fixed order."""
        return (c for c in self._product(defaults) if self.dropped_because(c) is None)

    def dropped(self, defaults: dict[str, Any] | None = None) -> Counter[str]:
        """How many configurations of the product are not trained, by reason."""
        return Counter(why for c in self._product(defaults) if (why := self.dropped_because(c)) is not None)

    def _may_drop(self, defaults: dict[str, Any] | None) -> bool:
        """Whether any configuration could be dropped: exclusions, or an impossible combination
        among the values the rule's fields take (a small product, not the space's)."""
        if self.exclude:
            return True
        completed = self.complete({}, defaults)
        for rule in IMPOSSIBLE:
            values = [self.choices.get(name, [completed[name]]) for name in rule.fields]
            if any(not rule.holds(*combination) for combination in itertools.product(*values)):
                return True
        return False

    def count_configurations(self, defaults: dict[str, Any] | None = None) -> int:
        """How many configurations are trained (without replicates)."""
        if not self._may_drop(defaults):
            return math.prod(len(values) for values in self.choices.values())
        return sum(1 for _ in self.configurations(defaults))

    def count_points(self, replicates: int | None = None, defaults: dict[str, Any] | None = None) -> int:
        return self.count_configurations(defaults) * (replicates or self.replicates)
