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
