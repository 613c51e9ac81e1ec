"""Combinations of point fields that no training can run.

A search space drops them (``SearchSpace.configurations``), so they never reach a worker, and
``--dry-run`` says how many it dropped and why. Add a rule here when a new field constrains
another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Impossible:
    fields: tuple[str, ...]
    reason: str  # the rule, as --dry-run states it
    holds: Callable[..., bool]  # called with the fields' values in order; False: impossible

    def rejects(self, configuration: dict[str, Any]) -> bool:
        return not self.holds(*(configuration[name] for name in self.fields))


IMPOSSIBLE: tuple[Impossible, ...] = (
    Impossible(("pad", "orientation"), "pad must be 0 exactly when orientation is none",
               lambda pad, orientation: (pad == 0) == (orientation == "none")),
)


def broken_rule(configuration: dict[str, Any]) -> Impossible | None:
    """The rule this (complete) configuration breaks, or None."""
    return next((rule for rule in IMPOSSIBLE if rule.rejects(configuration)), None)


def impossible_because(configuration: dict[str, Any]) -> str | None:
    """The reason no training can run this (complete) configuration, or None."""
    rule = broken_rule(configuration)
    return rule.reason if rule else None
