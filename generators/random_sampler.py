"""The random sampler: distinct configurations drawn uniformly from the space, times replicates."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from generators.points import expand
from generators.settings import GenSettings
from generators.streaming import stream_points
from hypers.space import SearchSpace


def sample_configurations(space: SearchSpace, samples: int, seed: int, defaults: dict) -> Iterator[dict[str, Any]]:
    """``samples`` distinct allowed configurations, drawn by rejection, reproducibly from ``seed``."""
    available = space.count_configurations(defaults)
    if samples > available:
        raise ValueError(f"generator.samples={samples} but the space has only {available} configurations")
    rng = np.random.default_rng(seed)
    names = list(space.choices)
    seen: set[tuple] = set()
    while len(seen) < samples:
        picked = {name: space.choices[name][rng.integers(len(space.choices[name]))] for name in names}
        key = tuple(picked.values())
        configuration = space.complete(picked, defaults)
        if key in seen or space.dropped_because(configuration):
            continue
        seen.add(key)
        yield configuration


def random_points(space: SearchSpace, samples: int, replicates: int, seed: int, defaults: dict):
    return expand(sample_configurations(space, samples, seed, defaults), replicates, seed)


def persistent_random(H, persis_info, gen_specs, libE_info):
    """libEnsemble generator function streaming random samples (see ``generators.streaming``)."""
    settings: GenSettings = gen_specs["user"]["settings"]
    points = random_points(settings.space, settings.samples, settings.replicates, settings.seed, settings.defaults)
    return stream_points(points, settings, gen_specs["out"], libE_info, persis_info)
