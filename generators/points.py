"""Turning configurations into points: replicates, reproducible seeds and stable identifiers.

The identifier is a uuid5 of the spec's seed, the configuration and the replicate, so the same
point gets the same identifier in every run, rerun or resumed run. Its seed follows from the
identifier of the same configuration validated on its own corruption: a training validated on a
held-out corruption is the same training (weights, batches) as the one validated on what it saw.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from hypers.fields import identity, value_of

NAMESPACE = uuid.UUID("5b1f3c2e-7d4a-4e0b-9a51-3f6c2d8e9b10")


def identify(configuration: dict[str, Any], replicate: int, spec_seed: int) -> tuple[str, int]:
    """(identifier, seed) of one training; independent of field order and of the run. The seed is
    that of the same configuration validated on its own corruption."""
    identifier = _uuid(configuration, replicate, spec_seed)
    seen = _uuid({**configuration, "val_corruption": value_of(configuration, "corruption")}, replicate, spec_seed)
    return str(identifier), seen.int % (2**31 - 1)


def _uuid(configuration: dict[str, Any], replicate: int, spec_seed: int) -> uuid.UUID:
    key = {"seed": spec_seed, "replicate": replicate, **identity(configuration)}
    return uuid.uuid5(NAMESPACE, json.dumps(key, sort_keys=True))


def make_point(configuration: dict[str, Any], replicate: int, spec_seed: int, resume_from: str = "") -> dict[str, Any]:
    identifier, seed = identify(configuration, replicate, spec_seed)
    return {**configuration, "replicate": replicate, "seed": seed, "identifier": identifier, "resume_from": resume_from}


def expand(configurations: Iterable[dict[str, Any]], replicates: int, spec_seed: int) -> Iterator[dict[str, Any]]:
    """Each configuration once per replicate, lazily."""
    for configuration in configurations:
        for replicate in range(replicates):
            yield make_point(configuration, replicate, spec_seed)


def to_array(points: list[dict[str, Any]], dtype: list[tuple]) -> np.ndarray:
    """Points as rows of the generator's output dtype (the point fields of the history, and
    the grouping generators' ``priority``)."""
    rows = np.zeros(len(points), dtype=dtype)
    for name, _ in dtype:
        rows[name] = [value_of(point, name) for point in points]
    return rows

