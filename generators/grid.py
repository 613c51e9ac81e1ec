"""The grid generator: every configuration of the space, times its replicates."""

from __future__ import annotations

from generators.points import expand
from generators.settings import GenSettings
from generators.streaming import stream_points
from hypers.space import SearchSpace


def grid_points(space: SearchSpace, replicates: int, seed: int, defaults: dict):
    return expand(space.configurations(defaults), replicates, seed)


def persistent_grid(H, persis_info, gen_specs, libE_info):
    """libEnsemble generator function streaming the grid (see ``generators.streaming``)."""
    settings: GenSettings = gen_specs["user"]["settings"]
    points = grid_points(settings.space, settings.replicates, settings.seed, settings.defaults)
    return stream_points(points, settings, gen_specs["out"], libE_info, persis_info)
