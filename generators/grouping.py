"""Grouping points that one vectorised sim can train together.

The JAX engine trains K models in one program when they share every shape: architecture, task
variant, hidden size, batch size and epochs. Points that differ only in learning rate, seed or
replicate are gathered into groups of up to ``size``; each group goes to one worker as one sim
(libEnsemble's ``give_all_with_same_priority``: a group's points share a priority, and earlier
groups rank higher). A bounded look-ahead keeps the stream lazy: groups still filling are
released, largest first, once more than a few groups' worth of points wait.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from simulators.training import shape_of

LOOKAHEAD_GROUPS = 4


def group_points(points: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """``points`` as groups of at most ``size`` same-shape points, in roughly their order."""
    filling: dict[tuple, list[dict[str, Any]]] = {}
    waiting = 0
    for point in points:
        group = filling.setdefault(shape_of(point), [])
        group.append(point)
        waiting += 1
        if len(group) == size:
            del filling[shape_of(point)]
            waiting -= size
            yield group
        elif waiting > LOOKAHEAD_GROUPS * size:
            largest = max(filling, key=lambda shape: len(filling[shape]))
            waiting -= len(filling[largest])
            yield filling.pop(largest)
    yield from filling.values()


def sim_rows(group: list[dict[str, Any]], number: int) -> list[dict[str, Any]]:
    """A group's points as the rows of sim ``number``: they share its priority (libEnsemble's
    ``give_all_with_same_priority`` hands them to one worker as one sim); earlier sims rank higher."""
    return [{**point, "priority": -number} for point in group]


class SimsInFlight:
    """Groups handed out as sims: their rows, and how many sims (free workers) a batch of returned
    points completes."""

    def __init__(self):
        self.sent = 0
        self._waiting: dict[int, set[str]] = {}
        self._sim_of: dict[str, int] = {}

    def rows(self, groups: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
        rows = []
        for group in groups:
            self.sent += 1
            self._waiting[self.sent] = {point["identifier"] for point in group}
            self._sim_of |= {point["identifier"]: self.sent for point in group}
            rows += sim_rows(group, self.sent)
        return rows

    def ended(self, identifiers: Iterable[str]) -> int:
        """How many sims the trainings ``identifiers`` complete."""
        completed = 0
        for identifier in identifiers:
            sim = self._sim_of.pop(identifier)
            self._waiting[sim].discard(identifier)
            if not self._waiting[sim]:
                del self._waiting[sim]
                completed += 1
        return completed
